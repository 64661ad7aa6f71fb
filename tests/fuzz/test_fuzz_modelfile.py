"""Fuzzing the model-file loader: Hypothesis-made metadata and damaged safetensors bytes through ``load_model``.

Three sources of files: JSON values of arbitrary shape as the ``moodscope`` metadata; the metadata of small
valid model files (one per task kind) mutated with extreme numbers, wrong types, extra and missing keys; and
the bytes of a valid file flipped, truncated or padded. Every example must load or raise
:class:`ModelFileError` (never another exception), within the time and memory caps of :func:`within_limits`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from fuzz.harness import within_limits
from moodscope.config import MUSICNN_EMBEDDING, FeatureConfig
from moodscope.errors import ModelFileError
from moodscope.modelfile import load_model, save_model
from moodscope.models import build


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory) -> list[tuple[dict, dict, bytes]]:
    """``(metadata, tensors, file bytes)`` of tiny model files of the four task kinds."""
    import dataclasses

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("fuzz-models")
    made = [
        (build("damff", width=0.0625, embed_dim=8, lstm_hidden=4), FeatureConfig(), {"kind": "dynamic"}),
        (
            build("adff", width=0.0625, lstm_hidden=4, fc_sizes=[8], ff_size=4),
            FeatureConfig(),
            {"kind": "static"},
        ),
        (
            build("tagger", n_tags=3, width=0.0625, fc_sizes=[4]),
            FeatureConfig(),
            {"kind": "tags", "seg_len_s": 1.0, "tag_names": ["a", "b", "c"], "thresholds": [0.5, 0.4, 0.6]},
        ),
        (
            build("musicnn_va", hidden=4),
            dataclasses.replace(MUSICNN_EMBEDDING, extras=("mode",)),
            {"kind": "mood", "window_s": 30.0, "hop_valence": 5.0, "mood_tags": ["happy", "sad"]},
        ),
    ]
    out = []
    for i, (model, features, task) in enumerate(made):
        path = save_model(
            d / f"m{i}.safetensors", model.eval(), features, {"description": "fuzz", "task": task}
        )
        load_model(path)  # valid to start with
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["moodscope"])
        out.append((meta, load_file(str(path)), path.read_bytes()))
    return out


def _load(path: Path) -> None:
    try:
        load_model(path)
    except ModelFileError:
        pass  # moodscope's own error: one line for the user


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
#: values at and past every bound, of every type a setting may wrongly have
_EXTREME = st.one_of(
    st.sampled_from(
        [
            0,
            -1,
            1,
            2,
            3,
            0.5,
            1e-300,
            1e9,
            10**7,
            2**31,
            2**63,
            10**30,
            1e300,
            -1e300,
            float("nan"),
            float("inf"),
            float("-inf"),
            True,
            False,
            None,
            "",
            "1",
            "hybrid",
            "dynamic",
            [],
            [0],
            [1, 2],
            [10**9],
            {},
            {"kind": 1},
        ]
    ),  # fmt: skip
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    _JSON,
)
_EXTRA_KEYS = [
    "format",
    "model_name",
    "model_args",
    "features",
    "info",
    "task",
    "kind",
    "width",
    "sr",
    "",
    "x",
]


def _paths(meta: dict) -> list[tuple[str, ...]]:
    """Every key of the metadata worth changing: top level, model_args, features, info, info.task; plus some
    that are not there."""
    paths = [(k,) for k in meta] + [(k,) for k in _EXTRA_KEYS]
    for section in ("model_args", "features", "info"):
        if isinstance(meta.get(section), dict):
            paths += [(section, k) for k in meta[section]] + [(section, k) for k in _EXTRA_KEYS]
    info = meta.get("info")
    task = info.get("task") if isinstance(info, dict) else None
    if isinstance(task, dict):
        paths += [("info", "task", k) for k in task] + [("info", "task", k) for k in _EXTRA_KEYS]
    return paths


def _mutate(meta: dict, path: tuple[str, ...], value, delete: bool) -> dict:
    meta = copy.deepcopy(meta)
    d = meta
    for k in path[:-1]:
        if not isinstance(d.get(k), dict):
            d[k] = {}
        d = d[k]
    if delete:
        d.pop(path[-1], None)
    else:
        d[path[-1]] = value
    return meta


@pytest.mark.fuzz
def test_fuzz_metadata_of_any_shape(fuzz, tmp_path, valid_files):
    _, tensors, _ = valid_files[0]
    path = tmp_path / "m.safetensors"

    @given(meta=_JSON)
    def inner(meta):
        save_file(tensors, str(path), metadata={"moodscope": json.dumps(meta)})
        with within_limits():
            _load(path)

    fuzz(inner)


@pytest.mark.fuzz
def test_fuzz_mutated_metadata(fuzz, tmp_path, valid_files):
    path = tmp_path / "m.safetensors"

    @given(data=st.data(), which=st.integers(0, len(valid_files) - 1), n=st.integers(1, 3))
    def inner(data, which, n):
        meta, tensors, _ = valid_files[which]
        for _ in range(n):
            key = data.draw(st.sampled_from(_paths(meta)))
            meta = _mutate(meta, key, data.draw(_EXTREME), data.draw(st.booleans()))
        save_file(tensors, str(path), metadata={"moodscope": json.dumps(meta)})
        with within_limits():
            _load(path)

    fuzz(inner)


@pytest.mark.fuzz
def test_fuzz_damaged_bytes(fuzz, tmp_path, valid_files):
    path = tmp_path / "m.safetensors"

    edits = st.lists(
        st.tuples(
            st.sampled_from(["set", "cut", "insert"]),
            st.integers(0, 10**6),
            st.binary(min_size=1, max_size=8),
        ),
        min_size=1,
        max_size=4,
    )

    @given(which=st.integers(0, len(valid_files) - 1), edits=edits, header_bias=st.booleans())
    def inner(which, edits, header_bias):
        data = bytearray(valid_files[which][2])
        header_end = 8 + int.from_bytes(data[:8], "little")
        for op, pos, chunk in edits:
            # half of the edits land in the 8-byte length and the JSON header, where the structure is
            pos = pos % (min(header_end, len(data)) if header_bias else len(data))
            if op == "set":
                data[pos : pos + len(chunk)] = chunk
            elif op == "cut":
                del data[pos:]
            else:
                data[pos:pos] = chunk
            if not data:
                break
        path.write_bytes(bytes(data))
        with within_limits():
            _load(path)

    fuzz(inner)


@pytest.mark.fuzz
def test_fuzz_random_bytes(fuzz, tmp_path):
    path = tmp_path / "m.safetensors"

    @given(head=st.integers(0, 2**64 - 1) | st.integers(0, 4096), body=st.binary(max_size=2000))
    def inner(head, body):
        path.write_bytes(head.to_bytes(8, "little") + body)
        with within_limits():
            _load(path)

    fuzz(inner)
