"""Fuzzing the dataset readers: Hypothesis-made ``static.csv``, ``dynamic.csv`` and ``dataset.yaml`` in a small
folder-layout tree, loaded by the ``folder`` adapter, and DEAM's wide dynamic tables through its reader.

Every example must load (its damage counted in the issues) or raise :class:`DatasetError`; within the time
and memory caps of :func:`within_limits`, and without quoting a file outside the tree.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from fuzz.harness import within_limits
from moodscope.datasets import load_dataset
from moodscope.datasets.base import IssueLog
from moodscope.datasets.deam import DEAMDataset
from moodscope.datasets.limits import confined_to
from moodscope.errors import DatasetError

SECRET = "root:x:0:0:fuzz-secret"

# cells that matter to the readers: ids, numbers at and past the bounds, quotes, BOMs, split names
_CELLS = st.one_of(
    st.sampled_from(
        [
            "",
            "t0",
            "t1",
            "t0.0",
            "nan",
            "inf",
            "-inf",
            "NA",
            "1e9",
            "-5",
            "0",
            "0.5",
            "1",
            "5",
            "9",
            "9.2",
            "1e308",
            "1e999",
            "86400",
            "86400.5",
            "train",
            "test",
            '"',
            '"a,b"',
            "\ufeff",
            "\t",
            " x ",
        ]
    ),  # fmt: skip
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.text(max_size=8),
)


def _table(columns: list[str]):
    header = st.lists(st.one_of(st.sampled_from(columns), st.text(max_size=6)), max_size=7)
    rows = st.lists(st.lists(_CELLS, max_size=8), max_size=12)
    sep = st.sampled_from([",", ";", "\t"])
    end = st.sampled_from(["\n", "\r\n", "\r"])
    return st.builds(
        lambda h, r, s, e: e.join(s.join(cells) for cells in [h, *r]) + e, header, rows, sep, end
    )


def _encoded(text):
    """Text as UTF-8, UTF-8 with a BOM, UTF-16 (BOM) or Latin-1 bytes; or raw bytes."""
    return st.one_of(
        text.map(lambda s: s.encode("utf-8", "surrogatepass")),
        text.map(lambda s: "\ufeff".encode() + s.encode("utf-8", "surrogatepass")),
        text.map(lambda s: s.encode("utf-16", "surrogatepass")),
        text.map(lambda s: s.encode("latin-1", "replace")),
        st.binary(max_size=300),
    )


STATIC = _encoded(
    st.one_of(
        _table(["track_id", "id", "valence", "arousal", "split", "title", "valence_mean"]),
        st.text(max_size=80),
    )
)
DYNAMIC = _encoded(
    st.one_of(
        _table(["track_id", "time_s", "time_ms", "t", "valence", "arousal", "split"]), st.text(max_size=80)
    )
)

_PATHS = st.sampled_from(
    ["audio", "./audio", "../secret.csv", "/etc/passwd", "/etc", "static.csv", "dataset.yaml", "audio/..", "..", "",
     "splits.csv", "link"]
)  # fmt: skip
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(), st.text(max_size=10), _PATHS
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(["min", "max", "static", "dynamic", "column", "file"]), inner, max_size=4
        ),
    ),
    max_leaves=12,
)
_KEYS = st.sampled_from(
    ["name", "description", "scale", "split", "audio_dir", "split_file", "split_column", "allow_outside_root"]
)
_HOSTILE = st.sampled_from(
    [
        "a: &a [1, *a]\nscale: *a\n",
        "l0: &l0 [x, x, x, x, x, x, x, x]\nl1: &l1 [*l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0]\n"
        "l2: &l2 [*l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1]\nl3: &l3 [*l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2]\n"
        "l4: &l4 [*l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3]\nl5: &l5 [*l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4]\n"
        "split: {file: *l5}\nname: *l5\n",
        "name: " + "[" * 3000,
        "name: !!python/object/apply:os.system ['true']\n",
        "scale: {min: 1, max: " + "9" * 5000 + "}\n",
        "scale: {min: .inf, max: .nan}\n",
        "when: 2001-13-45\n",
        "? [a, b]\n: c\n",
        "split: {file: ../secret.csv}\n",
        "audio_dir: /etc\n",
    ]
)
YAML = st.one_of(
    st.dictionaries(_KEYS, _VALUES, max_size=6).map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
    st.text(alphabet="&*[]{}:,-? \n!|>'\"#%@`abc019._/", max_size=120),
    _HOSTILE,
)


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (tmp_path / "secret.csv").write_text(f"{SECRET}\n{SECRET}\n")
    (root / "splits.csv").write_text("track_id,split\nt0,train\n")
    if not (root / "link").exists():
        (root / "link").symlink_to(tmp_path / "secret.csv")
    return root


def _check_no_secret(texts) -> None:
    for text in texts:
        assert SECRET not in text and "root:x:0:0" not in text, text


@pytest.mark.fuzz
def test_fuzz_folder_dataset(fuzz, tmp_path):
    root = _tree(tmp_path)
    (root / "static.csv").write_text("track_id,valence,arousal\nt0,0,0\n")
    load_dataset("folder", root)  # imports and caches outside the measured examples

    @given(
        st.one_of(st.none(), STATIC),
        st.one_of(st.none(), DYNAMIC),
        st.one_of(st.none(), YAML.map(lambda s: s.encode("utf-8", "surrogatepass"))),
    )
    def inner(static, dynamic, config):
        for name, data in (("static.csv", static), ("dynamic.csv", dynamic), ("dataset.yaml", config)):
            path = root / name
            if path.is_dir():
                shutil.rmtree(path)
            path.unlink(missing_ok=True)
            if data is not None:
                path.write_bytes(data)
        with within_limits():
            try:
                ds = load_dataset("folder", root)
            except DatasetError as e:
                _check_no_secret([str(e)])
                assert "\n" not in str(e), str(e)
                return
        _check_no_secret(ds.issues + [ds.name, ds.description] + [t.id for t in ds.tracks])
        assert len(ds.repairs) == len(ds.issues)
        for t in ds.tracks:
            if t.dynamic is not None:
                assert len(t.dynamic.times_s) <= 2 * 86400 + 1
                assert (t.dynamic.times_s >= 0).all() and (t.dynamic.times_s <= 86400).all()

    fuzz(inner)


_DEAM_COLUMNS = [
    "song_id",
    "sample_15000ms",
    "sample_15500ms",
    "sample_16000ms",
    "sample_0ms",
    "sample_1000000000000ms",
    "sample_86400000ms",
    "sample_86400500ms",
    "sample_" + "9" * 400 + "ms",
    "sample_15000.5ms",
]
_DEAM_TABLE = _encoded(st.one_of(_table(_DEAM_COLUMNS), st.text(max_size=80)))


@pytest.mark.fuzz
def test_fuzz_deam_dynamic_reader(fuzz, tmp_path):
    d = tmp_path / "dynamic"
    d.mkdir()
    v_path, a_path = d / "valence.csv", d / "arousal.csv"
    adapter = DEAMDataset()

    @given(_DEAM_TABLE, _DEAM_TABLE)
    def inner(valence, arousal):
        v_path.write_bytes(valence)
        a_path.write_bytes(arousal)
        log, tracks = IssueLog(), {}
        with within_limits(), confined_to(tmp_path):
            try:
                adapter._read_dynamic(v_path, a_path, log, tracks)
            except DatasetError:
                return
        for t in tracks.values():
            if t.dynamic is not None:
                assert (t.dynamic.times_s >= 0).all() and (t.dynamic.times_s <= 86400).all()

    fuzz(inner)
