"""compare: several models under one protocol, one table with mean ± std, paper numbers and a paired t-test."""

from __future__ import annotations

import csv

from fixtures_datasets import make_folder
from moodscope.compare import run_compare


def test_compare_tiny_models_on_one_protocol(tmp_path):
    root = make_folder(tmp_path, quirks=False, n_tracks=6, duration_s=31.0)
    cfg = {
        "name": "cmp",
        "data": {"dataset": "folder", "root": str(root)},
        "split": {"kind": "kfold", "folds": 2, "seed": 3},
        "train": {"epochs": 1, "batch_size": 2, "limit_train_batches": 2},
        "compare": {
            "args": {
                "damff": {"width": 0.0625, "embed_dim": 8, "lstm_hidden": 4},
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
