"""Training runs: folds, run directory, resume, sweeps, the model file from a run."""

from __future__ import annotations

import json

import pytest
import torch

from fixtures_datasets import make_folder
from moodscope.modelfile import load_model
from moodscope.tasks.dynamic import DynamicTask
from moodscope.training.data import carve_validation
from moodscope.training.experiment import run_experiment


def test_validation_carve_out_is_disjoint():
    ids = [f"s{i}" for i in range(20)]
    tr, va = carve_validation(ids, 0.1, seed=1)
    assert len(va) == 2 and not set(tr) & set(va) and set(tr) | set(va) == set(ids)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    root = make_folder(tmp, quirks=False, n_tracks=6, duration_s=31.0)
    cfg = {
        "name": "tiny",
        "model": {"name": "damff", "args": {"width": 0.0625, "embed_dim": 8, "lstm_hidden": 4}},
        "data": {"dataset": "folder", "root": str(root)},
        "task": {"train_hop_s": 10.0},
        "split": {"kind": "kfold", "folds": 2},
        "train": {"epochs": 2, "batch_size": 2, "patience": 5},
    }
    out = run_experiment(cfg, out_dir=tmp / "run", progress=False)
    return cfg, out, tmp / "run", root


def test_run_directory_contents(tiny_run):
    cfg, out, run, _ = tiny_run
    for name in (
        "config.yaml",
        "results.json",
        "results.md",
        "fold_0/model.safetensors",
        "fold_1/metrics.json",
    ):
        assert (run / name).is_file(), name
    res = json.loads((run / "results.json").read_text())
    assert len(res["folds"]) == 2
    test_ids = [set(f["test_ids"]) for f in res["folds"]]
    assert not test_ids[0] & test_ids[1] and len(test_ids[0] | test_ids[1]) == 6  # k-fold by song covers all
    for key in ("valence_ccc", "arousal_ccc", "valence_rmse"):
        assert key in res["summary"]
        assert f"| {key} |" in (run / "results.md").read_text()


def test_model_file_from_run_predicts_like_the_task(tiny_run):
    _, out, run, root = tiny_run
    bundle = load_model(run / "fold_0" / "model.safetensors")
    assert bundle.info["task"]["kind"] == "dynamic"
    assert bundle.model.norm.std.min() > 0 and not torch.allclose(
        bundle.model.norm.mean, torch.full((128,), -40.0)
    )


def test_resume_skips_finished_folds(tiny_run):
    cfg, out, run, _ = tiny_run
    before = (run / "fold_0" / "model.safetensors").stat().st_mtime_ns
    again = run_experiment(cfg, out_dir=run, resume=True, progress=False)
    assert (run / "fold_0" / "model.safetensors").stat().st_mtime_ns == before
    assert again["summary"] == out["summary"]


@pytest.mark.slow
def test_hop_sweep_trains_once_and_reevaluates(tiny_run, tmp_path, monkeypatch):
    """A sweep whose rows change only the evaluation hops (DAMFF Figure 3) trains the first row's folds and
    re-scores those models per row: the same hops reproduce the trained run's numbers exactly, another hop
    gives its own numbers, and no second training happens."""
    import moodscope.training.experiment as train

    cfg, out, run, _ = tiny_run
    calls = []
    real = train.train_fold
    monkeypatch.setattr(train, "train_fold", lambda *a, **k: calls.append(1) or real(*a, **k))
    hops_used = set()
    real_predict = DynamicTask.predict
    monkeypatch.setattr(
        DynamicTask,
        "predict",
        lambda self, *a, **k: (
            hops_used.add((self.hop_valence, self.hop_arousal)) or real_predict(self, *a, **k)
        ),
    )
    sweep = dict(cfg, sweep={"0.5": {"task.hop_valence": 0.5}, "same": {"task.hop_valence": 0.5}})
    sweep["sweep"]["5"] = {"task.hop_valence": 5.0, "task.hop_arousal": 5.0}
    res = run_experiment(sweep, out_dir=tmp_path / "sw", progress=False)
    assert len(calls) == 2  # two folds, trained once
    rows = res["sweep"]
    assert rows["same"]["summary"] == rows["0.5"]["summary"]
    assert rows["0.5"]["summary"] == out["summary"]  # same seed, same data: the tiny_run models again
    assert hops_used == {(0.5, 0.5), (5.0, 5.0)}  # both hops reached the task
    fold = json.loads((tmp_path / "sw" / "5" / "fold_1" / "metrics.json").read_text())
    assert fold["trained_in"].endswith("0.5/fold_1")
    assert "re-evaluated" in res["table"]
    # a row that changes training retrains
    calls.clear()
    sweep["sweep"] = {"a": {"task.hop_valence": 0.5}, "b": {"train.lr": 1.0e-3}}
    run_experiment(sweep, out_dir=tmp_path / "sw2", progress=False)
    assert len(calls) == 4


@pytest.mark.parametrize("model", ["damff", "classical"])
def test_tracks_without_the_tasks_labels_are_not_scored(model, tmp_path):
    """A release that labels tracks unevenly (the quirky folder tree has tracks with static labels only): they
    may land in a test or validation split, and are left out of scoring instead of breaking the fold."""
    from moodscope.datasets import load_dataset

    root = make_folder(tmp_path, quirks=True, n_tracks=6, duration_s=12.0)
    ds = load_dataset("folder", root)
    no_curve = {t.id for t in ds.tracks if t.dynamic is None}
    assert no_curve, "fixture should hold a track without dynamic labels"
    cfg = {
        "name": "uneven",
        "model": {"name": model, "args": {"width": 0.0625, "embed_dim": 8, "lstm_hidden": 4}},
        "data": {"dataset": "folder", "root": str(root)},
        "task": {"window_s": 10.0},
        "split": {"kind": "kfold", "folds": 2},
        "train": {"epochs": 1, "batch_size": 2},
    }
    out = run_experiment(cfg, out_dir=tmp_path / "run", progress=False)
    for f in out["folds"]:
        scored = f["n_test"]
        assert scored == len([i for i in f["test_ids"] if i not in no_curve])
    assert sum(len(set(f["test_ids"]) & no_curve) for f in out["folds"]) >= 1
