"""compare: several models under one protocol, one table with mean ± std, paper numbers and a paired t-test."""

from __future__ import annotations

import csv

import pytest

from fixtures_datasets import make_folder
from moodscope.training.compare import run_compare

TINY_DAMFF = {"width": 0.0625, "embed_dim": 8, "lstm_hidden": 4}


@pytest.mark.slow
def test_compare_tiny_models_on_one_protocol(tmp_path):
    root = make_folder(tmp_path, quirks=False, n_tracks=6, duration_s=31.0)
    cfg = {
        "name": "cmp",
        "data": {"dataset": "folder", "root": str(root)},
        "split": {"kind": "kfold", "folds": 2, "seed": 3},
        "train": {"epochs": 1, "batch_size": 2, "limit_train_batches": 2},
        "compare": {
            "args": {
                "damff": TINY_DAMFF,
                "crnn": {"width": 0.125},
            },
            "paper": {"crnn": {"arousal_ccc": 0.2798}},
        },
    }
    cfg_path = tmp_path / "cmp.yaml"
    import yaml

    cfg_path.write_text(yaml.safe_dump(cfg))
    out = run_compare(cfg_path, ["damff", "crnn"], out_dir=tmp_path / "out", progress=False)
    table = (tmp_path / "out" / "compare.md").read_text()
    assert out["table"] == table
    assert "| damff |" in table and "| crnn |" in table
    assert "[paper 0.2798]" in table and "(p=" in table
    rows = list(csv.DictReader(open(tmp_path / "out" / "compare.csv")))
    assert {r["model"] for r in rows} == {"damff", "crnn"}
    assert all(r["n_folds"] == "2" for r in rows)
    # the same split for every model: identical test ids per fold
    import json

    folds = {
        m: [f["test_ids"] for f in json.loads((tmp_path / "out" / m / "results.json").read_text())["folds"]]
        for m in ("damff", "crnn")
    }
    assert folds["damff"] == folds["crnn"]


@pytest.mark.slow
def test_compare_all_table2_models_and_classical_on_synthetic(tmp_path):
    """The issue's CI run: ``compare`` on the synthetic corpus, DAMFF, its four Table 2 baselines and the
    hand-crafted reference, tiny widths, one epoch."""
    import json

    import yaml

    cfg = {
        "name": "cmp-synth",
        "data": {
            "dataset": "synthetic",
            "root": None,
            "synthetic": {"n_clips": 6, "duration": 12.0, "seed": 0},
        },
        "task": {"window_s": 10.0, "train_hop_s": 5.0},
        "split": {"kind": "kfold", "folds": 2, "seed": 0},
        "train": {"epochs": 1, "batch_size": 4, "limit_train_batches": 1},
        "compare": {
            "args": {
                "damff": TINY_DAMFF,
                "crnn": {"width": 0.125},
                "bcrsn": {"width": 0.125},
                "dnn_raw": {"width": 0.125},
                "mcrnn": {"width": 0.125},
            }
        },
    }
    models = ["damff", "crnn", "bcrsn", "dnn_raw", "mcrnn", "classical"]
    out = run_compare(cfg, models, out_dir=tmp_path / "out", progress=False)  # a mapping, like run_experiment
    for m in models:
        assert f"| {m} |" in out["table"]
    rows = list(csv.DictReader(open(tmp_path / "out" / "compare.csv")))
    assert {r["model"] for r in rows} == set(models)
    assert {r["metric"] for r in rows} >= {"valence_ccc", "arousal_ccc", "valence_rmse"}
    test_ids = {
        m: [f["test_ids"] for f in json.loads((tmp_path / "out" / m / "results.json").read_text())["folds"]]
        for m in models
    }
    assert all(ids == test_ids["damff"] for ids in test_ids.values())
    # the reference solved the deep models' task: per-segment curves, scored like DAMFF
    assert yaml.safe_load((tmp_path / "out" / "classical" / "config.yaml").read_text())["model"]["args"] == {
        "output": "dynamic"
    }


def test_table_metric_selection_keeps_every_metric_in_the_csv():
    from moodscope.training.compare import comparison_rows, markdown_table

    def run(v):
        folds = [{"metrics": {"a_ccc": v + d, "b_rmse": 1 - v - d}} for d in (0.0, 0.1, 0.25)]
        return {
            "folds": folds,
            "summary": {"a_ccc": {"mean": v, "std": 0.1}, "b_rmse": {"mean": 1 - v, "std": 0.1}},
        }

    runs = {"x": run(0.5), "y": run(0.2)}
    rows = comparison_rows(runs, ["x", "y"], {})
    md = markdown_table(rows, ["x", "y"], metrics=["b_rmse"])
    assert "| model | b_rmse |" in md and "a_ccc" not in md
    assert {r["metric"] for r in rows} == {"a_ccc", "b_rmse"}
    import pytest

    with pytest.raises(ValueError, match="unknown metric.*nope.*a_ccc"):
        markdown_table(rows, ["x", "y"], metrics=["nope"])
