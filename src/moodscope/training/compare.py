"""``moodscope compare``: several models under one protocol, one table.

Every model is trained and evaluated by :func:`moodscope.training.experiment.run_experiment` with the same config — the same
dataset, splits (same seed), training settings and metrics — only ``model.name`` (and the model's own
arguments) change. Per-model constructor arguments come from the config's ``compare.args`` mapping::

    compare:
      args:
        damff: {width: 0.25}
        crnn: {width: 0.5}
      paper:                      # published numbers per model, shown beside ours
        crnn: {arousal_ccc: 0.2798, ...}

The table has, per model and metric, the mean ± std over folds, the paper's number where given, and a paired
t-test across folds against the first model (the papers mark significance this way); ``*`` marks p < 0.05.
Written as ``compare.md`` and ``compare.csv`` in the output folder, each model's run directory beside them.

A bundled model (``default``, ``demo``: :data:`moodscope.inference.predictor.BUNDLED_MODELS`) may be listed
too: it is not trained, only scored on each fold's test tracks with the experiment's metrics (its own
features and windowing), so a pretrained model sits in the same table. It must give what the metrics need
(a curve for ``dynamic`` and ``mood`` experiments).

``classical`` may be listed like a model: the hand-crafted reference (:class:`moodscope.training.classical.ClassicalReference`:
log-Mel/MFCC statistics and a linear model), given the output kind of the first deep model in the list, so
"beats hand-crafted features" is measured under the same folds. Its arguments come from ``compare.args.classical``
(``C``, ``alpha``, ``context_s``).
"""

from __future__ import annotations

import copy
import csv
import io
from pathlib import Path

import numpy as np

from ..config import FeatureConfig
from ..errors import UsageError
from ..fileio import json_text, write_atomic
from ..inference.predictor import BUNDLED_MODELS, Predictor
from ..inference.sliding import CURVE_OUTPUTS
from ..models import MODELS
from ..significance import paired_ttest
from ..tasks import TASKS, Item
from .classical import NAME as CLASSICAL
from .data import load_tracks, log, make_folds, tracks_to_items
from .experiment import check_flags, resolve_config, run_experiment
from .reports import summarize
from .rundir import check_run_dir, locked_folder


def run_compare(
    config,
    models: list[str],
    overrides=None,
    *,
    out_dir=None,
    resume: bool = False,
    restart: bool = False,
    metrics: list[str] | None = None,
    progress: bool = True,
) -> dict:
    """Train and evaluate ``models`` under ``config`` (a YAML path or a mapping, as :func:`run_experiment`);
    write ``compare.md``/``.csv``/``.json``.

    ``metrics`` limits the markdown table's columns (the CSV and JSON keep every metric). The output folder
    is created and locked before any work, and every model's run directory in it is checked against its
    config first (``resume``/``restart`` as for :func:`run_experiment`), so a refused model costs no
    training of the others.
    """

    if not models:
        raise UsageError("--models needs at least one model name")
    for m in models:
        if m != CLASSICAL and m not in BUNDLED_MODELS:
            MODELS.get(m)  # unknown names fail before any training
    check_flags(resume, restart)
    cfg = resolve_config(config, overrides)
    deep = [m for m in models if m != CLASSICAL and m not in BUNDLED_MODELS] or [cfg["model"]["name"]]
    kind = MODELS.get(deep[0]).output
    comp = cfg.get("compare") or {}
    out = Path(out_dir) if out_dir else Path(cfg["output_dir"]) / f"compare-{cfg['name']}"
    trained = {name: _model_config(cfg, name, kind) for name in models if name not in BUNDLED_MODELS}
    with locked_folder(out, "output folder", "compare"):
        for name, c in trained.items():  # every run directory's config checked before any training
            check_run_dir(resolve_config(c), out / name, resume=resume, restart=restart)
        if restart:  # the earlier table goes with the earlier runs
            for ext in ("csv", "json", "md"):
                (out / f"compare.{ext}").unlink(missing_ok=True)
        runs = {}
        for name in models:
            if name in BUNDLED_MODELS:
                runs[name] = _score_pretrained(cfg, name, kind, progress=progress)
                continue
            runs[name] = run_experiment(
                trained[name], out_dir=out / name, resume=resume, restart=restart, progress=progress
            )
        rows = comparison_rows(runs, models, comp.get("paper") or {})
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        write_atomic(out / "compare.csv", buf.getvalue())
        write_atomic(out / "compare.json", json_text(rows, indent=1))
        # after the CSV: a mistyped metric name costs no results
        table_md = markdown_table(rows, models, metrics)
        write_atomic(out / "compare.md", table_md)
    return {"table": table_md, "rows": rows, "out_dir": str(out)}


def _model_config(cfg: dict, name: str, kind: str) -> dict:
    """The experiment config of one compared model: ``cfg`` with the model and its ``compare.args``."""
    comp = cfg.get("compare") or {}
    c = copy.deepcopy(cfg)
    c["model"] = {"name": name, "args": dict((comp.get("args") or {}).get(name) or {})}
    if name == cfg["model"]["name"] and not c["model"]["args"]:
        c["model"]["args"] = dict(cfg["model"].get("args") or {})
    if name == CLASSICAL:  # the hand-crafted reference solves the deep models' task
        c["model"]["args"].setdefault("output", kind)
        head = (cfg["model"].get("args") or {}).get("task")  # a static model's head, if it has one
        if head is not None:
            c["model"]["args"].setdefault("task", head)
    c["name"] = f"{cfg['name']}-{name}"
    return c


def _score_pretrained(cfg: dict, name: str, kind: str, *, progress: bool) -> dict:
    """A bundled model scored on every fold's test tracks under the experiment's task ``kind``."""
    pred = Predictor.from_file(name)
    if pred.model.output not in CURVE_OUTPUTS or kind not in CURVE_OUTPUTS:
        raise UsageError(
            f"bundled model {name!r} ({pred.model.output}) can only be compared in dynamic or mood experiments"
        )
    dataset = load_tracks(cfg)
    with_audio = [
        Item(id=t.id, feats=np.zeros((1, 1), np.float32)) for t in dataset.tracks if t.audio is not None
    ]
    folds = make_folds(cfg, dataset, with_audio)
    tag_names = list(getattr(dataset, "tag_names", None) or [])
    test_ids = {i for f in folds for i in f.test}
    items, failures = tracks_to_items(
        [t for t in dataset.tracks if t.id in test_ids], pred.features, tag_names=tag_names, progress=progress
    )
    for tid, msg in failures:
        log.warning("skipped track %s: %s", tid, msg)
    task = TASKS.get(kind).for_training(FeatureConfig(), cfg.get("task"), {}, tag_names)
    by_id = {it.id: it for it in task.labelled(items)}
    preds = {i: pred.task.predict_item(pred.model, it, device=pred.device) for i, it in by_id.items()}
    results = []
    for k, f in enumerate(folds):
        ids = [i for i in f.test if i in by_id]
        metrics = task.evaluate([by_id[i] for i in ids], [preds[i] for i in ids])
        results.append({"fold": k, "metrics": dict(metrics), "n_test": len(ids)})
    summary = {k: {"mean": m, "std": sd} for k, (m, sd) in summarize(results).items()}
    return {"folds": results, "summary": summary}


def comparison_rows(runs: dict, models: list[str], paper: dict) -> list[dict]:
    """One row per model and metric: mean, std, folds, the paper's number, paired t-test vs ``models[0]``."""
    ref = models[0]
    metrics = list(runs[ref]["summary"])
    ref_folds = {m: [f["metrics"][m] for f in runs[ref]["folds"]] for m in metrics}
    rows = []
    for name in models:
        res = runs[name]
        for m in metrics:
            vals = [f["metrics"][m] for f in res["folds"]]
            defined = np.all(np.isfinite(vals)) and np.all(np.isfinite(ref_folds[m]))  # e.g. AUC of one class
            t, p = (
                (float("nan"), float("nan"))
                if name == ref or not defined
                else paired_ttest(vals, ref_folds[m])
            )
            pub = (paper.get(name) or {}).get(m)
            rows.append(
                {
                    "model": name,
                    "metric": m,
                    "mean": res["summary"][m]["mean"],
                    "std": res["summary"][m]["std"],
                    "n_folds": len(vals),
                    "paper": "" if pub is None else pub,
                    "t_vs_" + ref: "" if np.isnan(t) else round(t, 4),
                    "p_vs_" + ref: "" if np.isnan(p) else round(p, 4),
                }
            )
    return rows


def markdown_table(rows: list[dict], models: list[str], metrics=None) -> str:
    """The comparison as markdown: a row per model, the ``metrics`` columns (default all, in run order)."""
    ref = models[0]
    all_metrics = list(dict.fromkeys(r["metric"] for r in rows))
    shown = list(metrics) if metrics else all_metrics
    unknown = [m for m in shown if m not in all_metrics]
    if unknown:
        raise UsageError(f"unknown metric(s) {', '.join(unknown)}; the runs have: {', '.join(all_metrics)}")
    lines = [f"Models under one protocol; mean ± std over folds; p: paired t-test vs {ref} (* p < 0.05).", ""]
    lines.append("| model | " + " | ".join(shown) + " |")
    lines.append("|---|" + "---|" * len(shown))
    by = {(r["model"], r["metric"]): r for r in rows}
    for name in models:
        cells = []
        for m in shown:
            r = by[(name, m)]
            cell = f"{r['mean']:.4f} ± {r['std']:.4f}"
            p = r["p_vs_" + ref]
            if p != "":
                cell += f" (p={p:.3f}{'*' if p < 0.05 else ''})"
            if r["paper"] != "":
                cell += f" [paper {r['paper']:.4f}]"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
