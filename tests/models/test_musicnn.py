"""MusiCNN with the converted musicnn weights against musicnn's own TensorFlow graph.

``tests/fixtures/musicnn_msd_reference.json`` was written by ``tools/convert_musicnn.py --reference``: the
TF graph of musicnn 0.1.0 (``MSD_musicnn``, ``is_training=False``) run on a synthetic clip whose recipe the
file holds. Here the clip is rendered again from the recipe, featurised with moodscope's own
``compute_features`` and run through ``load_musicnn("msd")``.
"""

from __future__ import annotations

import importlib.resources
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from moodscope.audio.features import compute_features
from moodscope.config import FeatureConfig
from moodscope.errors import ModelFileError
from moodscope.models import musicnn as musicnn_module
from moodscope.models.musicnn import (
    MSD_TAGS,
    MUSICNN_FEATURES,
    PATCH_FRAMES,
    MusiCNN,
    load_musicnn,
    musicnn_metadata,
    window_starts,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "musicnn_msd_reference.json"
TOL_REFERENCE = 1e-3  # TF vs PyTorch float32 differ by ~1e-5; the fixture is rounded to 4 decimals
# Fully-convolutional windows vs the same windows evaluated as separate patches (interior windows of the
# fixture clip, all 269 starts): measured max 0.153 / mean 0.0038 abs tag probability, embedding cosine
# >= 0.966. The test checks a subset against these with margin.
TOL_WINDOW_MAX, TOL_WINDOW_MEAN, TOL_WINDOW_COS = 0.2, 0.01, 0.95
# Receptive field of one frame of frame_features: 63 frames before / 64 after (temporal 128x1, TF 'same'),
# plus 3 + 3 + 3 of the mid end -> [t - 72, t + 73]
CONTEXT_BEFORE, CONTEXT_AFTER = 72, 73


def render(recipe: dict) -> np.ndarray:
    """The fixture clip from its recipe (see ``recipe["formula"]``), float64."""
    sr = recipe["sr"]
    t = np.arange(int(round(sr * recipe["duration_s"]))) / sr
    y = np.zeros_like(t)
    for t0, dur, f, a in recipe["notes"]:
        u = t - t0
        on = (u >= 0) & (u < dur)
        env = np.minimum(1.0, u[on] / recipe["attack_s"]) * np.exp(-u[on] / recipe["decay_s"])
        partials = sum(
            w * np.sin(2 * np.pi * h * f * u[on]) for h, w in enumerate(recipe["harmonics"], start=1)
        )
        y[on] += a * env * partials
    for t0, dur, f0, f1, a in recipe["chirps"]:
        u = t - t0
        on = (u >= 0) & (u < dur)
        v = u[on]
        y[on] += (
            a * np.sin(np.pi * v / dur) ** 2 * np.sin(2 * np.pi * (f0 * v + (f1 - f0) * v**2 / (2 * dur)))
        )
    return y


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def net() -> MusiCNN:
    return load_musicnn("msd")


@pytest.fixture(scope="module")
def feats(reference) -> torch.Tensor:
    y = render(reference["recipe"])
    assert abs(y).max() == pytest.approx(reference["peak"], abs=1e-4)
    assert FeatureConfig.from_dict(reference["features"]) == MUSICNN_FEATURES
    f = compute_features(y, MUSICNN_FEATURES)
    assert f.shape == (reference["n_frames"], 96)
    assert float(f.mean()) == pytest.approx(reference["feature_mean"], abs=1e-5)
    return torch.from_numpy(f)


def test_matches_musicnn_tensorflow(net, feats, reference):
    patches = torch.stack([feats[s : s + PATCH_FRAMES] for s in reference["patch_starts"]])
    with torch.inference_mode():
        out = net.embed(patches)
        logits = net(patches)
    torch.testing.assert_close(logits, out["logits"], rtol=0, atol=0)
    taggram = torch.sigmoid(out["logits"]).numpy()
    assert (
        taggram.shape == (3, 50)
        and out["embedding"].shape == (3, 200)
        and out["penultimate"].shape == (3, 200)
    )
    assert out["max_pool"].shape == out["mean_pool"].shape == (3, 753) and out["pooled"].shape == (3, 1506)
    for key, ours in [
        ("taggram", taggram),
        ("embedding", out["embedding"]),
        ("penultimate", out["penultimate"]),
    ]:
        err = np.abs(np.asarray(ours) - np.array(reference[key])).max()
        assert err < TOL_REFERENCE, f"{key}: max abs difference {err:.2e} to musicnn's TF graph"


def test_fully_convolutional_interior_frames_equal_per_patch(net, feats):
    """Frames whose receptive field lies inside the patch are the same in both modes (only padding differs)."""
    with torch.inference_mode():
        track = net.frame_features(feats[None])[0]
        for s in (90, 200, 330):
            patch = net.frame_features(feats[None, s : s + PATCH_FRAMES])[0]
            lo, hi = CONTEXT_BEFORE, PATCH_FRAMES - CONTEXT_AFTER
            torch.testing.assert_close(patch[lo:hi], track[s + lo : s + hi], rtol=0, atol=1e-3)
            assert (patch[lo - 8] - track[s + lo - 8]).abs().max() > 1e-3  # the edges do differ
        one = feats[None, :PATCH_FRAMES]
        torch.testing.assert_close(net.head(net.frame_features(one))["logits"], net(one), rtol=0, atol=0)


def test_fully_convolutional_windows_close_to_per_patch(net, feats):
    n = feats.shape[0]
    # windows inside the track: real music on both sides of each window in the fully-convolutional pass
    starts = list(range(CONTEXT_BEFORE + 1, n - PATCH_FRAMES - CONTEXT_AFTER + 1, 16))
    with torch.inference_mode():
        ff = net.frame_features(feats[None])
        assert ff.shape == (1, n, 753)
        windows = net.head_windows(ff, starts)
        # head_windows pools exactly what head pools on the slice
        for i in (0, len(starts) - 1):
            direct = net.head(ff[:, starts[i] : starts[i] + PATCH_FRAMES])
            for k in ("max_pool", "mean_pool", "logits", "embedding"):
                torch.testing.assert_close(windows[k][:, i], direct[k], rtol=1e-5, atol=1e-5)
        per_patch = net.embed(torch.stack([feats[s : s + PATCH_FRAMES] for s in starts]))
    diff = (torch.sigmoid(windows["logits"][0]) - torch.sigmoid(per_patch["logits"])).abs()
    cos = torch.nn.functional.cosine_similarity(windows["embedding"][0], per_patch["embedding"], dim=-1)
    assert diff.max() < TOL_WINDOW_MAX and diff.mean() < TOL_WINDOW_MEAN and cos.min() > TOL_WINDOW_COS


def test_window_max_and_sum_equal_brute_force():
    torch.manual_seed(0)
    frames, k = 900, 187
    x = (torch.randn(2, 11, frames) * 4 + 1).transpose(1, 2)  # (batch, frames, C), time contiguous
    # unsorted, repeated, at both ends, spaced closer and wider than the windows
    starts = torch.tensor([0, 5, 5, 713, frames - k, 300, 31, 62, 400, 10, 600])
    with torch.no_grad():
        maxes, sums = musicnn_module._window_max_sum(x, starts, k)
        assert maxes.shape == sums.shape == (2, len(starts), 11) and sums.dtype == torch.float64
        for i, s in enumerate(starts.tolist()):
            torch.testing.assert_close(maxes[:, i], x[:, s : s + k].amax(dim=1), rtol=0, atol=0)
            torch.testing.assert_close(sums[:, i], x[:, s : s + k].double().sum(dim=1), rtol=1e-12, atol=1e-9)
        none = musicnn_module._window_max_sum(x, torch.tensor([], dtype=torch.long), k)
        assert none[0].shape == (2, 0, 11)


def test_eval_shortcut_of_frequency_max_equals_plain_order():
    torch.manual_seed(0)
    block = musicnn_module.FreqMaxBlock(8, (7, 5), (3, 3))
    with torch.no_grad():
        block.bn.weight.copy_(torch.randn(8))  # about half negative: the min branch
        block.bn.bias.copy_(torch.randn(8))
        block.bn.running_mean.copy_(torch.randn(8))
        block.bn.running_var.copy_(torch.rand(8) + 0.1)
    block.eval()
    x = torch.randn(3, 1, 40, 12)
    with torch.no_grad():
        plain = block.bn(torch.relu(block.conv(torch.nn.functional.pad(x, (0, 0, 3, 3))))).amax(dim=-1)
        torch.testing.assert_close(block(x), plain, rtol=0, atol=1e-6)


def test_window_starts_centre_windows_on_the_grid():
    fps = 16000 / 256
    starts = window_starts(1876, 60, fps=fps)
    assert len(starts) == 60 and min(starts) == 0 and max(starts) == 1876 - PATCH_FRAMES
    for i, s in enumerate(starts):
        if 0 < s < 1876 - PATCH_FRAMES:
            assert abs((s + (PATCH_FRAMES - 1) / 2) / fps - (i + 0.5) * 0.5) <= 0.5 / fps
    with pytest.raises(ValueError):
        window_starts(100, 1)


def test_metadata_carries_licence_tags_and_features(net):
    meta = musicnn_metadata("msd")
    assert meta["tags"] == MSD_TAGS == net.tags and len(MSD_TAGS) == 50
    assert meta["licence"]["name"] == "ISC"
    assert (
        "Jordi Pons" in meta["licence"]["copyright"]
        and "Universitat Pompeu Fabra" in meta["licence"]["copyright"]
    )
    assert "Permission to use, copy, modify, and/or distribute this software" in meta["licence"]["text"]
    assert meta["source"]["package"] == "musicnn" and meta["source"]["version"] == "0.1.0"
    assert meta["source"]["checkpoint"] == "musicnn/MSD_musicnn/"
    assert FeatureConfig.from_dict(meta["features"]) == MUSICNN_FEATURES == net.features
    assert meta["patch_frames"] == PATCH_FRAMES
    assert "ISC" in musicnn_module.__doc__ and "Jordi Pons" in musicnn_module.__doc__
    assert not net.training and not any(p.requires_grad for p in net.parameters())


def test_loading_never_unpickles(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a musicnn model file was unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    model = load_musicnn("msd")
    assert model.n_frame_features == 753 and model.out.out_features == 50


def test_mismatched_file_names_what_differs(tmp_path):
    path = importlib.resources.files("moodscope").joinpath("assets", "musicnn_msd.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    tensors["dense.weight"] = tensors["dense.weight"][:100]
    del tensors["out.bias"]
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata=meta)
    with pytest.raises(ModelFileError, match=r"out\.bias.*dense\.weight"):
        load_musicnn(bad)
    with pytest.raises(ModelFileError, match="not bundled"):
        load_musicnn("mtt")
