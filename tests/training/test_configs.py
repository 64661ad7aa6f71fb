"""Every paper-experiment config runs end to end on a fixture tree (tiny width, one fold, a few batches).

This is the CI smoke test of ``configs/``: the config parses, its dataset adapter reads a release-shaped
tree, its split protocol finds train and test songs, the model trains, the run directory gets a model file
and a results table with the paper's numbers beside ours.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures_datasets import (
    make_4q,
    make_cal500,
    make_cal500exp,
    make_deam,
    make_emopia,
    make_folder,
    make_pmemo,
    make_vgmidi,
)
from moodscope.training.config import load_config
from moodscope.training.experiment import run_experiment
from tools import config_needs, needs

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))


def _param(path: Path):
    """A config, skipped (naming the tool and its install line) where a tool its data sections need is missing:
    mood_emopia renders EMOPIA's MIDI with fluidsynth and two soundfonts."""
    try:
        tools = config_needs(load_config(path))
    except Exception:  # a broken config fails in its own test, not at collection
        tools = ()
    return pytest.param(path, id=path.stem, marks=needs(*tools))


CONFIG_PARAMS = [_param(p) for p in CONFIGS]

TINY = {
    "damff": {"width": 0.0625, "embed_dim": 8, "lstm_hidden": 4},
    "adff": {"width": 0.0625, "lstm_hidden": 4},
    "tagger": {"width": 0.125, "fc_sizes": [8]},
    "musicnn_va": {"width": 0.125},
}


def _fixture(dataset: str, tmp_path: Path) -> Path:
    if dataset == "deam":
        return make_deam(tmp_path, quirks=False, duration_s=20.0, n_extra=3, ext=".wav")
    if dataset == "pmemo":
        return make_pmemo(tmp_path, quirks=False, duration_s=6.0, n_extra=4, ext=".wav")
    if dataset == "cal500":
        return make_cal500(tmp_path, quirks=False, duration_s=6.0, n_extra=4, ext=".wav")
    if dataset == "cal500exp":
        return make_cal500exp(tmp_path, quirks=False, duration_s=6.0, n_extra=4, ext=".wav")
    if dataset == "folder":
        return make_folder(tmp_path, quirks=False, n_tracks=6, duration_s=32.0)
    if dataset == "emopia":
        return make_emopia(tmp_path, quirks=False) / "EMOPIA_1.0"
    if dataset == "4q":
        return make_4q(tmp_path)
    if dataset == "vgmidi":
        return make_vgmidi(tmp_path, quirks=False)
    raise AssertionError(f"no fixture for dataset {dataset!r}")


@pytest.mark.parametrize("path", CONFIG_PARAMS)
def test_config_runs_on_fixture(path, tmp_path):
    cfg = load_config(path)
    ds = cfg["data"]["dataset"]
    if ds != "synthetic":  # a paper experiment must say which paper and table it reproduces
        assert cfg["paper"].get("source"), f"{path.name}: no paper source recorded"
    if ds == "synthetic":
        cfg["data"]["synthetic"] = {"n_clips": 6, "duration": 31.0, "seed": 0}
        cfg["data"]["root"] = None
    else:
        cfg["data"]["root"] = str(_fixture(ds, tmp_path))
    for i, extra in enumerate(cfg["data"]["also"]):  # training-only data: a tiny corpus; other renderings
        if extra["dataset"] == "synthetic":
            extra["synthetic"] = {"n_clips": 4, "duration": 31.0, "seed": 1}
        elif extra.get("root"):  # another release (mood_4q's EMOPIA): its own fixture
            extra["root"] = str(_fixture(extra["dataset"], tmp_path / f"also{i}"))
    name = cfg["model"]["name"]
    cfg["model"]["args"] = {**cfg["model"]["args"], **TINY[name]}
    cfg["train"].update(epochs=1, batch_size=4, limit_train_batches=2, max_time_s=120)
    if name not in (
        "damff",
        "musicnn_va",
    ):  # static / tag models: 5 s inputs keep the smoke test fast (sweep rows may override)
        cfg["task"]["seg_len_s"] = 5.0
    cfg["split"]["only_fold"] = 0
    if cfg["split"]["kind"] in ("kfold", "group_kfold"):
        cfg["split"]["folds"] = 2
    if cfg["sweep"]:  # two rows are enough to exercise the sweep
        cfg["sweep"] = dict(list(cfg["sweep"].items())[:2])
    out = run_experiment(cfg, out_dir=tmp_path / "run", progress=False)
    run_dir = Path(out["run_dir"])
    table = (run_dir / "results.md").read_text()
    paper = cfg["paper"].get("results") or {}
    if cfg["sweep"]:
        rows = list(cfg["sweep"])
        for label in rows:
            assert f"| {label} |" in table
            row_dir = run_dir / label.replace("/", "_").replace(" ", "_")
            # a row trains its models, or re-evaluates the first row's (evaluation-only sweeps)
            assert list(row_dir.rglob("model.safetensors")) or all(
                "trained_in" in json.loads(p.read_text()) for p in row_dir.rglob("metrics.json")
            )
            assert list(row_dir.rglob("metrics.json"))
        first = paper.get(rows[0]) or {}
        if first:
            assert "(paper " in table
    else:
        assert list(run_dir.rglob("model.safetensors"))
        if name == "tagger":  # per-tag precision/recall/F1/AUC beside the micro/macro table
            assert (run_dir / "per_tag.csv").is_file() and "| tag |" in table
        for metric, value in paper.items():
            assert f"| {metric} |" in table and f"{value:.4f}" in table
    res = json.loads((run_dir / "results.json").read_text())
    assert res["name"] == cfg["name"]
    if cfg["train"].get("level_fit"):  # the default recipe's piano level was fitted after training
        fold = json.loads(next(run_dir.rglob("metrics.json")).read_text())
        assert (
            fold["level_fit"]["tracks"] > 0 and fold["level_fit"]["gate_tracks"] > fold["level_fit"]["tracks"]
        )


def test_a_setting_unset_in_an_older_run_is_its_default():
    """A run made before a setting of a typed section existed resumes: unset there is its default now; any other
    value against unset still is a difference, and so is null against unset outside the typed sections (a
    renderer's ``program: null`` keeps the MIDI's own instruments: not the default)."""
    import copy

    from moodscope.training.config import UNSET, config_differences

    now = load_config(None)
    old = copy.deepcopy(now)
    del old["train"]["level_fit"], old["train"]["keep"]  # an older moodscope's run
    assert config_differences(old, now) == []
    assert config_differences(old, dict(now, train={**now["train"], "keep": "last"})) == [
        ("train.keep", "best", "last")
    ]
    fit = {"sources": ["x"]}
    diffs = config_differences(old, dict(now, train={**now["train"], "level_fit": fit}))
    assert [k for k, _, _ in diffs] == ["train.level_fit", "train.level_fit.sources"]  # null -> set
    old["data"]["options"] = {"soundfont": "FluidR3_GM"}
    new = dict(now, data={**now["data"], "options": {"soundfont": "FluidR3_GM", "program": None}})
    assert config_differences(old, new) == [("data.options.program", UNSET, None)]
