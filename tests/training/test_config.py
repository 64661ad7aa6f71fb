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
