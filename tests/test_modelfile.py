"""Model files: safetensors + JSON metadata, exact round trip, clear errors on mismatch."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from moodscope.config import FeatureConfig
from moodscope.errors import ModelFileError
from moodscope.modelfile import load_model, read_metadata, save_model
from moodscope.models import build


@pytest.fixture(scope="module")
def small_damff():
    torch.manual_seed(0)
    m = build("damff", width=0.125, embed_dim=16, lstm_hidden=8).eval()
    m.set_input_stats(torch.linspace(-60, -20, 128), torch.linspace(5, 15, 128))
    return m


def test_round_trip_gives_identical_outputs(tmp_path, small_damff):
    path = save_model(tmp_path / "m.safetensors", small_damff, FeatureConfig(), {"description": "test"})
    bundle = load_model(path)
    x = torch.randn(2, 1, 500, 128) * 20 - 40
    with torch.no_grad():
        assert torch.equal(small_damff(x), bundle.model(x))
    assert bundle.model.model_args == small_damff.model_args
    assert bundle.features == FeatureConfig()
    assert bundle.info["description"] == "test"
    assert not bundle.model.training
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp files left


def test_metadata_is_plain_json(tmp_path, small_damff):
    path = save_model(tmp_path / "m.safetensors", small_damff, FeatureConfig(n_mels=128))
    meta = read_metadata(path)
    assert meta["model_name"] == "damff"
    assert meta["model_args"]["width"] == 0.125
    assert meta["features"]["hop_length"] == 441


def test_mismatched_architecture_names_the_difference(tmp_path, small_damff):
    path = save_model(tmp_path / "m.safetensors", small_damff, FeatureConfig())
    meta = read_metadata(path)
    meta["model_args"]["lstm_hidden"] = 12  # weights were saved with 8
    tensors = {k: v.contiguous() for k, v in small_damff.state_dict().items()}
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata={"moodscope": json.dumps(meta)})
    with pytest.raises(
        ModelFileError, match=r"bad\.safetensors: weights do not match model 'damff'.*shape mismatch"
    ):
        load_model(bad)
    tensors.pop(next(iter(tensors)))
    meta["model_args"]["lstm_hidden"] = 8
    save_file(tensors, str(bad), metadata={"moodscope": json.dumps(meta)})
    with pytest.raises(ModelFileError, match="missing tensors"):
        load_model(bad)


@pytest.mark.parametrize(
    "content, match",
    [
        (None, "model file not found"),
        (b"", "not a safetensors model file"),
        (b"\x00" * 100, "not a safetensors model file"),
    ],
)
def test_bad_files(tmp_path, content, match):
    p = tmp_path / "x.safetensors"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(ModelFileError, match=match):
        load_model(p)


def test_foreign_safetensors_and_unknown_model(tmp_path):
    p = tmp_path / "f.safetensors"
    save_file({"w": torch.zeros(2)}, str(p))
    with pytest.raises(ModelFileError, match="no 'moodscope' metadata"):
        load_model(p)
    meta = {"format": 1, "model_name": "nonexistent", "model_args": {}, "features": {}, "info": {}}
    save_file({"w": torch.zeros(2)}, str(p), metadata={"moodscope": json.dumps(meta)})
    with pytest.raises(ModelFileError, match='model_name="nonexistent": unknown model'):
        load_model(p)
    meta["model_name"] = "damff"
    meta["model_args"] = {"no_such_arg": 1}
    save_file({"w": torch.zeros(2)}, str(p), metadata={"moodscope": json.dumps(meta)})
    with pytest.raises(ModelFileError, match="no_such_arg"):
        load_model(p)
