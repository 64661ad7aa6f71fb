"""Training-only datasets (``data.also``) and predefined validation splits: config checks, folds, aux items,
and a whole run that trains on the aux tracks and never tests on them."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from fixtures_datasets import make_folder
from moodscope.config import FeatureConfig
from moodscope.errors import ConfigError
from moodscope.tasks.base import Item
from moodscope.training.config import load_config
from moodscope.training.data import Fold, load_aux_items, make_folds
from moodscope.training.experiment import run_experiment


def set_splits(root: Path, splits: dict[str, str]) -> Path:
    """Rewrite the ``split`` column of a folder fixture's static.csv for the given ids."""
    path = root / "static.csv"
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    col = rows[0].index("split")
    for row in rows[1:]:
        if row[0] in splits:
            row[col] = splits[row[0]]
    path.write_text("\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")
    return root


def folder(tmp_path: Path, name: str, **kwargs) -> Path:
    """A clean folder fixture in its own directory (``make_folder`` always writes ``folder_ds``)."""
    base = tmp_path / name
    base.mkdir()
    return make_folder(base, quirks=False, **kwargs)


# ----------------------------------------------------------------------------------------------------
# config


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({"root": "/data/x"}, r"data\.also\[0\]: expected a mapping with 'dataset'"),
        ("folder", r"data\.also\[0\]: expected a mapping"),
        (
            {"dataset": "folder", "root": "/x", "split": ["train"]},
            r"data\.also\[0\]: unknown key\(s\) \['split'\]",
        ),
    ],
)
def test_also_entries_are_checked(entry, match):
    with pytest.raises(ConfigError, match=match):
        load_config(base={"data": {"dataset": "folder", "also": [entry]}})


def test_also_names_the_failing_entry():
    good = {"dataset": "folder", "root": "/x", "options": {}, "synthetic": {}, "splits": ["train"]}
    with pytest.raises(ConfigError, match=r"data\.also\[1\]"):
        load_config(base={"data": {"also": [good, {"dataset": "folder", "bogus": 1}]}})
    assert load_config(base={"data": {"also": [good]}})["data"]["also"] == [good]
    assert load_config()["data"]["also"] == []
    with pytest.raises(ConfigError, match=r"data\.also: expected a list"):
        load_config(base={"data": {"also": {"dataset": "folder"}}})


# ----------------------------------------------------------------------------------------------------
# folds and aux items


def _dataset(splits: dict[str, str | None]):
    return SimpleNamespace(tracks=[SimpleNamespace(id=i, split=s) for i, s in splits.items()])


def _items(ids):
    return [Item(i, np.zeros((10, 4), np.float32)) for i in ids]


def test_predefined_split_with_validation_tracks():
    splits = {
        "a": "train",
        "b": "Training",
        "c": "val",
        "d": "Validation",
        "e": "test",
        "f": "train",
        "g": None,
    }
    cfg = {"split": {"kind": "predefined", "folds": 2}}
    folds = make_folds(cfg, _dataset(splits), _items("abcdeg"))  # f has no audio
    assert len(folds) == 2
    for f in folds:
        assert f == Fold(["a", "b"], ["e"], ["c", "d"]) and f.aux == []
        assert not set(f.val) & set(f.train)
    # without validation tracks: val is None (the fold carves its own)
    assert make_folds(cfg, _dataset({"a": "train", "e": "test"}), _items("ae"))[0] == Fold(["a"], ["e"], None)
    # validation tracks without audio: as if there were none
    assert make_folds(cfg, _dataset({"a": "train", "c": "val", "e": "test"}), _items("ae"))[0].val is None


def test_load_aux_items_keeps_the_named_splits_and_prefixes_ids(tmp_path):
    root = folder(tmp_path, "aux", n_tracks=4, duration_s=2.0)  # t0..t2 train, t3 test
    set_splits(root, {"t1": "val"})
    feats = FeatureConfig(n_mels=32)
    entry = {"dataset": "folder", "root": str(root)}
    cfg = load_config(base={"data": {"dataset": "folder", "also": [{**entry, "splits": ["Train"]}]}})
    items = load_aux_items(cfg, feats, ["happy", "sad"], progress=False)
    assert [it.id for it in items] == ["folder:t0", "folder:t2"]
    # labels are read as for the main dataset (its tag names)
    np.testing.assert_array_equal(items[0].tags, [0.0, 0.25])
    assert items[0].dynamic is not None and items[0].static is not None
    cfg = load_config(base={"data": {"also": [{**entry, "splits": ["train", "val"]}, entry]}})
    both = load_aux_items(cfg, feats, None, progress=False)
    assert [it.id for it in both][:3] == ["folder:t0", "folder:t1", "folder:t2"] and len(both) == 7
    assert load_aux_items(load_config(), feats, None, progress=False) == []


def test_a_main_dataset_without_tags_takes_the_first_aux_tag_names(tmp_path):
    """VGMIDI (curves, no tags) as the main dataset with 4Q/EMOPIA (quadrant tags) in data.also: the quadrant
    labels must survive, so the tag names come from the first entry that has some."""
    root = folder(tmp_path, "aux", n_tracks=3, duration_s=2.0)
    cfg = load_config(
        base={"data": {"dataset": "folder", "also": [{"dataset": "folder", "root": str(root)}]}}
    )
    names: list[str] = []
    items = load_aux_items(cfg, FeatureConfig(n_mels=32), names, progress=False)
    assert names == ["happy", "sad"] and items[0].tags is not None
    kept = ["calm"]  # a main dataset with tags keeps its own
    load_aux_items(cfg, FeatureConfig(n_mels=32), kept, progress=False)
    assert kept == ["calm"]


def test_two_aux_datasets_of_one_kind_keep_their_tracks_apart(tmp_path):
    """Two ``data.also`` entries of the same adapter (e.g. two renderings of one release) must not collide
    on ids: ``_prepare`` keys items by id, so one entry's tracks would replace the other's and the
    duplicated ids could land in both the training and the validation side of a fold."""
    a = folder(tmp_path, "a", n_tracks=3, duration_s=2.0)
    b = folder(tmp_path, "b", n_tracks=3, duration_s=2.0)
    also = [{"dataset": "folder", "root": str(a)}, {"dataset": "folder", "root": str(b)}]
    try:
        cfg = load_config(base={"data": {"also": also}})
        items = load_aux_items(cfg, FeatureConfig(n_mels=32), None, progress=False)
    except ConfigError:
        return  # refusing the ambiguity is a fix too
    ids = [it.id for it in items]
    assert len(ids) == 6 and len(set(ids)) == 6, ids


# ----------------------------------------------------------------------------------------------------
# a whole run


def test_run_trains_on_aux_tracks_and_never_tests_them(tmp_path):
    main = folder(tmp_path, "main", n_tracks=6, duration_s=6.0)  # t0..t4 train, t5 test
    set_splits(main, {"t3": "val", "t4": "validation"})
    aux = folder(tmp_path, "extra", n_tracks=5, duration_s=6.0)  # t0..t3 train, t4 test
    cfg = {
        "name": "aux",
        "model": {"name": "musicnn_va", "args": {"width": 0.25}},
        "data": {
            "dataset": "folder",
            "root": str(main),
            "also": [{"dataset": "folder", "root": str(aux), "splits": ["train"]}],
        },
        "task": {"window_s": 5.0, "train_hop_s": 2.5},
        "split": {"kind": "predefined", "folds": 1, "val_fraction": 0.25},
        "train": {"epochs": 1, "batch_size": 4},
    }
    out = run_experiment(cfg, out_dir=tmp_path / "run", progress=False)
    assert out["n_tracks"] == 6 and out["n_aux_tracks"] == 4
    fold = json.loads((tmp_path / "run" / "fold_0" / "metrics.json").read_text())
    # main: 3 train, 2 predefined val, 1 test; aux: 4 tracks of which round(0.25 * 4) = 1 validates
    assert (fold["n_train"], fold["n_val"], fold["n_test"]) == (3 + 3, 2 + 1, 1)
    assert fold["test_ids"] == ["t5"]
    assert not any(i.startswith("folder:") for i in fold["test_ids"])
    assert {"valence_ccc", "quadrant_accuracy"} <= set(fold["metrics"])
    assert out["folds"][0]["n_train"] == 6
