"""The curve table of the default model on human curves: series-grouped cross-validation on VGMIDI's given half.

    python tools/vgmidi_report.py --run runs/mood_vgmidi [--model NAME=FILE ...] [--out runs/mood_vgmidi/report]

``--run`` is the run directory of ``moodscope train --config configs/mood_vgmidi.yaml`` (5 folds, no series in
two). Every held-out piece is scored once, by the model of the fold that held it out; then, over all 100 pieces:

- **per piece** (the movement inside a piece): Pearson and CCC between the predicted 2 Hz curve and the
  listeners' bars on the same grid (labelled steps only), averaged over pieces;
- **across pieces** (the level): Pearson between the pieces' mean predicted and mean labelled values;
- **pooled**: Pearson and CCC over every labelled step of every piece at once.

Rows: **ours** (the fold models), each ``--model NAME=FILE`` as it is (e.g. the default model before issue 24,
the demo's DAMFF), each scored on every piece (none of them saw VGMIDI), and the **baseline** of the issue: a ridge
regression per 0.5 s step on the frozen features of the pre-issue-23 default model (MusiCNN embedding + tag
logits + mode features), trained on the fold's training pieces' bars (``alpha = 1000`` on standardised inputs).
Writes ``report.md`` and ``report.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from moodscope.config import FeatureConfig
from moodscope.inference.predictor import Predictor
from moodscope.metrics import ccc, pcc
from moodscope.training.data import load_tracks, make_folds, tracks_to_items
from moodscope.training.experiment import resolve_config

BASELINE_FEATURES = FeatureConfig.for_kind("musicnn", extras=("mode",))
DIMS = ("valence", "arousal")


def _labelled(item, curve: np.ndarray):
    n = min(len(item.dynamic), len(curve))
    ok = ~np.isnan(item.dynamic[:n]).any(1)
    return item.dynamic[:n][ok], np.asarray(curve)[:n][ok, :2]


def scores(pairs) -> dict:
    """``pairs``: (reference, estimate) ``(n_i, 2)`` per piece -> the table's figures."""
    out = {}
    for j, d in enumerate(DIMS):
        out[f"{d}_piece_pcc"] = float(np.mean([pcc(r[:, j], e[:, j]) for r, e in pairs]))
        out[f"{d}_piece_ccc"] = float(np.mean([ccc(r[:, j], e[:, j]) for r, e in pairs]))
        out[f"{d}_static_pcc"] = pcc([r[:, j].mean() for r, _ in pairs], [e[:, j].mean() for _, e in pairs])
        out[f"{d}_pooled_pcc"] = pcc(
            np.concatenate([r[:, j] for r, _ in pairs]), np.concatenate([e[:, j] for _, e in pairs])
        )
        out[f"{d}_pooled_ccc"] = ccc(
            np.concatenate([r[:, j] for r, _ in pairs]), np.concatenate([e[:, j] for _, e in pairs])
        )
        out[f"{d}_curve_std"] = float(np.mean([e[:, j].std() for _, e in pairs]))
        out[f"{d}_label_std"] = float(np.mean([r[:, j].std() for r, _ in pairs]))
    return out


def _baseline(train_items, test_items) -> dict:
    from sklearn.linear_model import Ridge

    X, Y = [], []
    for it in train_items:
        n = min(len(it.dynamic), len(it.feats))
        ok = ~np.isnan(it.dynamic[:n]).any(1)
        X.append(it.feats[:n][ok])
        Y.append(it.dynamic[:n][ok])
    X, Y = np.vstack(X).astype(np.float64), np.vstack(Y)
    mu, sd = X.mean(0), X.std(0) + 1e-8
    m = Ridge(alpha=1000.0).fit((X - mu) / sd, Y)
    return {it.id: m.predict((np.asarray(it.feats, np.float64) - mu) / sd) for it in test_items}


def report(
    run: Path, models: dict[str, Path], out: Path | None = None, folds_only=None, student: bool = False
) -> dict:
    out = out or run / "report"
    out.mkdir(parents=True, exist_ok=True)
    cfg = resolve_config(run / "config.yaml")
    ds = load_tracks(cfg)
    fold_models = sorted(run.glob("fold_*/model.safetensors"))
    if (
        folds_only is not None
    ):  # a run stopped early: score the folds it finished, and the rows on those pieces
        fold_models = [run / f"fold_{k}" / "model.safetensors" for k in folds_only]
    ours0 = Predictor.from_file(fold_models[0])
    items, _ = tracks_to_items(ds.tracks, ours0.features, progress=True)
    items = [it for it in items if it.dynamic is not None]
    folds = make_folds(cfg, ds, items)
    if folds_only is not None:
        folds = [folds[k] for k in folds_only]
        by_fold = {i for f in folds for i in f.test}
        items = [it for it in items if it.id in by_fold]
    if len(folds) != len(fold_models):
        raise SystemExit(f"{run}: {len(fold_models)} fold models for {len(folds)} folds")
    by_id = {it.id: it for it in items}
    base_by_id = {it.id: it for it in tracks_to_items(ds.tracks, BASELINE_FEATURES, progress=True)[0]}
    rows: dict[str, dict] = {"ours": {}, "baseline": {}}
    student_by_id = {}
    if student:  # the same fold models on the distilled front end's features (issue 25)
        rows["ours, student front end"] = {}
        fast0 = Predictor.from_file(fold_models[0], frontend="student")
        student_by_id = {it.id: it for it in tracks_to_items(ds.tracks, fast0.features, progress=True)[0]}
    for k, (fold, path) in enumerate(zip(folds, fold_models)):
        pred = Predictor.from_file(path)
        for tid in fold.test:
            rows["ours"][tid] = pred.task.predict_item(pred.model, by_id[tid])
        if student:
            fast = Predictor.from_file(path, frontend="student")
            for tid in fold.test:
                rows["ours, student front end"][tid] = fast.task.predict_item(fast.model, student_by_id[tid])
        base = _baseline(
            [base_by_id[i] for i in fold.train if i in base_by_id], [base_by_id[i] for i in fold.test]
        )
        rows["baseline"].update(base)
        print(f"fold {k}: {len(fold.test)} pieces scored", flush=True)
    for name, path in models.items():
        pred = Predictor.from_file(path)
        its = {it.id: it for it in tracks_to_items(ds.tracks, pred.features, progress=True)[0]}
        rows[name] = {tid: pred.task.predict_item(pred.model, its[tid]) for tid in by_id}
    table = {}
    for name, preds in rows.items():
        table[name] = scores([_labelled(by_id[tid], p) for tid, p in preds.items()])
    result = {
        "run": str(run),
        "pieces": len(by_id),
        "folds": [sorted({ds.track(i).meta.get("series") for i in f.test}) for f in folds],
        "rows": table,
    }
    lines = [
        f"VGMIDI given half, series-grouped cross-validation ({len(folds)} folds scored), {len(by_id)} pieces "
        "(each scored by the fold model that held it out); per piece = mean over pieces.",
        "",
        "| model | per-piece PCC V / A | per-piece CCC V / A | static PCC V / A (across pieces) | pooled CCC V / A | curve std V / A (labels) |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in table.items():
        lines.append(
            f"| {name} | {s['valence_piece_pcc']:.3f} / {s['arousal_piece_pcc']:.3f} | "
            f"{s['valence_piece_ccc']:.3f} / {s['arousal_piece_ccc']:.3f} | "
            f"{s['valence_static_pcc']:.3f} / {s['arousal_static_pcc']:.3f} | "
            f"{s['valence_pooled_ccc']:.3f} / {s['arousal_pooled_ccc']:.3f} | "
            f"{s['valence_curve_std']:.3f} / {s['arousal_curve_std']:.3f} "
            f"({s['valence_label_std']:.3f} / {s['arousal_label_std']:.3f}) |"
        )
    (out / "report.md").write_text("\n".join(lines) + "\n")
    (out / "report.json").write_text(json.dumps(result, indent=2))
    print("\n".join(lines))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--model", action="append", default=[], metavar="NAME=FILE",
                    help="another model file scored on every piece as it is (repeatable)")  # fmt: skip
    ap.add_argument("--out", type=Path)
    ap.add_argument("--folds", help="score only these folds, e.g. 0,1,2,3 (a run stopped early)")
    ap.add_argument(
        "--student", action="store_true", help="also score the fold models on the student front end"
    )
    a = ap.parse_args()
    models = {}
    for m in a.model:
        name, _, path = m.partition("=")
        if not path:
            ap.error(f"--model {m!r}: expected NAME=FILE")
        models[name] = Path(path)
    folds = None if a.folds is None else [int(k) for k in a.folds.split(",")]
    report(a.run, models, a.out, folds, student=a.student)


if __name__ == "__main__":
    main()
