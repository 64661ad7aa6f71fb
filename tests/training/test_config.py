"""Config loading, overrides and their errors."""

from __future__ import annotations

import pytest

from moodscope.errors import ConfigError
from moodscope.training.config import DEFAULTS, apply_overrides, load_config, parse_override


def test_defaults_are_the_damff_paper_settings():
    cfg = load_config()
    assert cfg["train"]["lr"] == pytest.approx(3e-4)
    assert cfg["train"]["batch_size"] == 32
    assert cfg["train"]["epochs"] == 100
    assert cfg["model"]["name"] == "damff"


def test_yaml_merges_over_defaults_and_overrides_win(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: x\ntrain:\n  epochs: 7\nmodel:\n  name: damff\n  args: {width: 0.5}\n")
    cfg = load_config(p, ["train.epochs=3", "model.args.width=0.25", "data.root=/data/DEAM"])
    assert cfg["name"] == "x"
    assert cfg["train"]["epochs"] == 3
    assert cfg["train"]["batch_size"] == DEFAULTS["train"]["batch_size"]
    assert cfg["model"]["args"] == {"width": 0.25}
    assert cfg["data"]["root"] == "/data/DEAM"


@pytest.mark.parametrize(
    "text, keys, value",
    [
        ("a.b=1", ["a", "b"], 1),
        ("a=1e-4", ["a"], 1e-4),
        ("a=[1, 2]", ["a"], [1, 2]),
        ("a=true", ["a"], True),
        ("a=x", ["a"], "x"),
        ("a=", ["a"], None),
    ],
)
def test_parse_override(text, keys, value):
    assert parse_override(text) == (keys, value)


def test_override_errors():
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("train.epochs")
    with pytest.raises(ConfigError, match="unknown keys in 'train'"):
        load_config(None, ["train.epoch=3"])
    with pytest.raises(ConfigError, match="unknown top-level"):
        load_config(None, ["trian.epochs=3"])


def test_missing_and_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(lst)


def test_apply_overrides_does_not_mutate():
    base = {"a": {"b": 1}}
    out = apply_overrides(base, ["a.b=2", "c.d=3"])
    assert base == {"a": {"b": 1}}
    assert out == {"a": {"b": 2}, "c": {"d": 3}}


def test_override_reaches_into_a_list_by_index():
    base = {"data": {"also": [{"dataset": "emopia", "root": None}, {"dataset": "synthetic"}]}}
    out = apply_overrides(base, ["data.also.0.root=/x/emopia", "data.also.1.synthetic.seed=3"])
    assert out["data"]["also"] == [
        {"dataset": "emopia", "root": "/x/emopia"},
        {"dataset": "synthetic", "synthetic": {"seed": 3}},
    ]
    assert base["data"]["also"][0]["root"] is None
    with pytest.raises(ConfigError, match="data.also has 2 entries, no entry '2'"):
        apply_overrides(base, ["data.also.2.root=/x"])
    with pytest.raises(ConfigError, match="no entry 'first'"):
        apply_overrides(base, ["data.also.first.root=/x"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epochs=ten", "train.epochs: expected a number, got 'ten'"),
        ("train.epochs=0", "train.epochs: expected an integer >= 1"),
        ("train.batch_size=2.5", "train.batch_size: expected an integer, got 2.5"),
        ("train.lr=-1", "train.lr: expected a positive number"),
        ("train.fast_dev_run=maybe", "train.fast_dev_run: expected true or false"),
        ("split.kind=random", "split.kind: 'random' is not one of kfold, group_kfold, holdout"),
        ("split.test_fraction=1.5", r"split.test_fraction: expected a number in \(0, 1\)"),
        ("data.cache=sometimes", "data.cache: expected true or false"),
    ],
)
def test_typed_sections_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_typed_sections_normalise_values():
    cfg = load_config(None, ["train.lr='1e-5'", "train.epochs=3.0", "split.dev_ids_file=dev.txt"])
    assert cfg["train"]["lr"] == 1e-5 and isinstance(cfg["train"]["lr"], float)
    assert cfg["train"]["epochs"] == 3 and isinstance(cfg["train"]["epochs"], int)
    assert cfg["split"]["dev_ids_file"] == "dev.txt"  # deam2015's development ids (was refused as unknown)
    assert load_config(None, ["train.limit_train_batches=5"])["train"]["limit_train_batches"] == 5  # a count
