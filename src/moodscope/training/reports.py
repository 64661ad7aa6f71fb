"""Run results: ``results.json``, mean and standard deviation over folds, markdown tables beside the paper's numbers."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..fileio import json_text, write_atomic
from ..significance import summarize_folds


def write_json(path: Path, obj) -> None:
    write_atomic(path, json_text(obj, indent=2, default=_json_default))


def _json_default(o):
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


# ------------------------------------------------------------------------------------------------------------
# results
# ------------------------------------------------------------------------------------------------------------
def summarize(fold_results: list[dict]) -> OrderedDict:
    return summarize_folds([r["metrics"] for r in fold_results])


def per_tag_table(folds: list[dict]) -> tuple[str, str]:
    """Per-tag scores averaged over folds: a markdown table and CSV text (one row per tag).

    ``folds`` holds each fold's ``tag -> {precision, recall, f1, roc_auc, pr_auc, support}``. The mean skips
    folds where a metric is undefined (NaN AUC for a tag with one class in that fold's test tracks);
    ``support`` is summed, so it counts the tag's positive test examples over all folds.
    """
    tags = list(folds[0])
    keys = ["precision", "recall", "f1", "roc_auc", "pr_auc"]
    md = [
        f"Per tag, mean over {len(folds)} fold(s) (test tracks); support: positive test examples, all folds.",
        "",
        "| tag | " + " | ".join(keys) + " | support |",
        "|---|" + "---|" * (len(keys) + 1),
    ]
    csv_lines = ["tag," + ",".join(keys) + ",support"]
    for t in tags:
        vals = []
        for k in keys:
            v = np.array([f[t][k] for f in folds if t in f], dtype=np.float64)
            vals.append(float(np.nanmean(v)) if np.isfinite(v).any() else float("nan"))
        sup = int(sum(f[t]["support"] for f in folds if t in f))
        md.append(f"| {t} | " + " | ".join("—" if np.isnan(v) else f"{v:.3f}" for v in vals) + f" | {sup} |")
        csv_lines.append(f"{t}," + ",".join("" if np.isnan(v) else f"{v:.6f}" for v in vals) + f",{sup}")
    return "\n".join(md) + "\n", "\n".join(csv_lines) + "\n"


def results_table(summary: dict, paper: dict | None = None, title: str = "") -> str:
    """Markdown table: metric, ours (mean ± std over folds), the paper's number where the config gives it."""
    paper_res = (paper or {}).get("results") or {}
    lines = []
    if title:
        lines.append(f"### {title}\n")
    if paper:
        src = " — ".join(str(paper[k]) for k in ("source", "table", "row") if paper.get(k))
        if src:
            lines.append(f"Paper: {src}\n")
    lines.append("| metric | ours (mean ± std) | paper |")
    lines.append("|---|---|---|")
    for k, (m, s) in summary.items():
        p = paper_res.get(k)
        lines.append(f"| {k} | {m:.4f} ± {s:.4f} | {'' if p is None else f'{p:.4f}'} |")
    return "\n".join(lines) + "\n"
