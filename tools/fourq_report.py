"""The 4Q numbers of the default model: cross-validation, paired comparisons, bias, confusion, playback level.

    python tools/fourq_report.py --run runs/mood_4q [--old-model OLD.safetensors] [--out runs/mood_4q/report]

``--run`` is the run directory of ``moodscope train --config configs/mood_4q.yaml`` (artist-grouped 5-fold
cross-validation on 4q-given). For each fold the tool scores, on the same held-out clips:

- **ours**: the fold's model (``fold_k/model.safetensors``);
- **old default** (``--old-model``, optional): a model file that never saw 4Q (e.g. the default model before
  issue 23, ``git show 7a5137c:src/moodscope/assets/default_musicnn_va.safetensors``), scored as it is;
- **baseline**: the issue's floor, one standardised logistic regression per dimension (``C = 0.1``) on each
  clip's mean and standard deviation of the frozen features of the pre-issue-23 default model (MusiCNN
  embedding + 50 tag logits + mode features, no loudness normalisation), trained on the fold's 4Q training
  clips only.

It prints and writes (``report.md``, ``report.json``) mean ± std over folds of quadrant accuracy, valence and
arousal ROC-AUC, and the shares of clips predicted V+ and A+ (truth beside them), with a paired t-test across
folds against ours; the confusion matrix of ours pooled over the folds; and the playback-level test on real
clips: every held-out clip of fold 0 played at -30, -20, -10 and +10 dB (float samples, nothing clipped)
through ours, the largest change of static V/A and the clips whose quadrant changed.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np

from moodscope.audio.decode import load_audio
from moodscope.config import FeatureConfig
from moodscope.emotion import quadrant_index
from moodscope.inference.predictor import Predictor
from moodscope.significance import paired_ttest
from moodscope.training import moods as mood_tags
from moodscope.training.data import load_tracks, make_folds, tracks_to_items
from moodscope.training.experiment import resolve_config

SIGNS = {1: (1, 1), 2: (-1, 1), 3: (-1, -1), 4: (1, -1)}
GAINS_DB = (-30.0, -20.0, -10.0, 10.0)
BASELINE_FEATURES = FeatureConfig.for_kind("musicnn", extras=("mode",))


def _scores(quadrant: np.ndarray, v: np.ndarray, a: np.ndarray) -> dict:
    """Quadrant accuracy, per-dimension ROC-AUC and predicted shares from static scores (sign = class)."""
    from sklearn.metrics import roc_auc_score

    tv = np.array([SIGNS[q][0] for q in quadrant]) > 0
    ta = np.array([SIGNS[q][1] for q in quadrant]) > 0
    pred_q = quadrant_index(v, a) + 1  # 0-based in moodscope.emotion, 1-based (Q1-Q4) in 4Q
    return {
        "quadrant_accuracy": float(np.mean(pred_q == quadrant)),
        "valence_auc": float(roc_auc_score(tv, v)),
        "arousal_auc": float(roc_auc_score(ta, a)),
        "share_v_pos": float(np.mean(v >= 0)),
        "share_a_pos": float(np.mean(a >= 0)),
        "truth_v_pos": float(np.mean(tv)),
        "truth_a_pos": float(np.mean(ta)),
    }


def _model_static(pred: Predictor, items) -> tuple[np.ndarray, np.ndarray]:
    out = np.array([pred.task.predict_item(pred.model, it).mean(axis=0)[:2] for it in items])
    return out[:, 0], out[:, 1]


def _clip_stats(items) -> np.ndarray:
    return np.array([np.concatenate([it.feats.mean(0), it.feats.std(0)]) for it in items])


def _baseline(train_items, test_items, quad_of) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xtr, xte = _clip_stats(train_items), _clip_stats(test_items)
    out = []
    for dim in (0, 1):
        y = np.array([SIGNS[quad_of[it.id]][dim] for it in train_items]) > 0
        m = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000)).fit(xtr, y)
        out.append(m.predict_proba(xte)[:, 1] - 0.5)  # centred: the sign is the predicted class
    return out[0], out[1]


def _level_test(pred: Predictor, tracks, sr: int = 16000) -> dict:
    worst, moved = 0.0, []
    for tr in tracks:
        y = load_audio(tr.audio, sr=sr)
        base = pred.predict(y, sr=sr)
        for g in GAINS_DB:
            r = pred.predict(y * np.float32(10.0 ** (g / 20.0)), sr=sr)
            worst = max(worst, *(abs(r.static[k] - base.static[k]) for k in ("valence", "arousal")))
            if r.quadrant != base.quadrant:
                moved.append(f"{tr.id} {g:+.0f} dB")
    return {
        "clips": len(tracks),
        "gains_db": list(GAINS_DB),
        "largest_change": worst,
        "quadrant_changed": moved,
    }


def _row(name: str, per_fold: list[dict], ref: list[dict] | None) -> dict:
    row = {"model": name}
    for k in per_fold[0]:
        vals = np.array([f[k] for f in per_fold])
        row[k] = {"mean": float(vals.mean()), "std": float(vals.std()), "folds": vals.tolist()}
        if ref is not None and not k.startswith("truth") and len(vals) > 1:
            row[k]["p_vs_ours"] = paired_ttest(vals, np.array([f[k] for f in ref]))[1]
    return row


def report(run: Path, old_model: Path | None = None, out: Path | None = None, level_clips: int = 40) -> dict:
    """Write ``report.md`` and ``report.json`` for the cross-validation run ``run``; return the JSON's dict."""
    out = out or run / "report"
    out.mkdir(parents=True, exist_ok=True)
    cfg = resolve_config(run / "config.yaml")
    ds = load_tracks(cfg)
    quad_of = {t.id: int(t.meta["quadrant"]) for t in ds.tracks}
    fold_models = sorted(run.glob("fold_*/model.safetensors"))
    ours0 = Predictor.from_file(fold_models[0])
    items, _ = tracks_to_items(ds.tracks, ours0.features, progress=True)
    base_items, _ = tracks_to_items(ds.tracks, BASELINE_FEATURES, progress=True)
    base_by_id = {it.id: it for it in base_items}
    folds = make_folds(cfg, ds, items)
    if len(folds) != len(fold_models):
        raise SystemExit(f"{run}: {len(fold_models)} fold models for {len(folds)} folds")
    by_id = {it.id: it for it in items}
    old = Predictor.from_file(old_model) if old_model else None
    old_items = {}
    if old is not None:
        old_items = {it.id: it for it in tracks_to_items(ds.tracks, old.features, progress=True)[0]}

    track_of = {t.id: t for t in ds.tracks}
    vocab = mood_tags.vocabulary(ds.tracks)
    mood_scores = []
    rows: dict[str, list[dict]] = {"ours": [], "old default": [], "baseline": []}
    confusion = np.zeros((4, 4), int)
    for fold, path in zip(folds, fold_models):
        pred = Predictor.from_file(path)
        test = [by_id[i] for i in fold.test]
        q = np.array([quad_of[i] for i in fold.test])
        v, ar = _model_static(pred, test)
        rows["ours"].append(_scores(q, v, ar))
        for t, p in zip(q, quadrant_index(v, ar)):
            confusion[t - 1, p] += 1
        if old is not None:
            rows["old default"].append(_scores(q, *_model_static(old, [old_items[i] for i in fold.test])))
        train = [base_by_id[i] for i in fold.train + (fold.val or []) if i in base_by_id]
        rows["baseline"].append(_scores(q, *_baseline(train, [base_by_id[i] for i in fold.test], quad_of)))
        tagged = copy.deepcopy(pred.model)
        w = pred.task.window_segments
        mood_tags.fit_moods(tagged, [by_id[i] for i in fold.train], track_of, vocab, window_steps=w)
        mood_scores.append(mood_tags.score_moods(tagged, test, track_of, window_steps=w))
    table = [_row("ours", rows["ours"], None)]
    table += [_row(n, r, rows["ours"]) for n, r in rows.items() if n != "ours" and r]

    level = _level_test(ours0, [track_of[i] for i in folds[0].test[:level_clips]])

    metrics = ("quadrant_accuracy", "valence_auc", "arousal_auc", "share_v_pos", "share_a_pos")
    lines = ["| model | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for r in table:
        cells = []
        for k in metrics:
            c = f"{r[k]['mean']:.3f} ± {r[k]['std']:.3f}"
            if "p_vs_ours" in r[k]:
                c += f" (p {r[k]['p_vs_ours']:.3f})"
            cells.append(c)
        lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    truth = table[0]
    lines.append(
        f"\ntruth shares: V+ {truth['truth_v_pos']['mean']:.3f}, A+ {truth['truth_a_pos']['mean']:.3f}"
    )
    lines += ["", "confusion of ours, pooled over folds (rows: truth Q1-Q4, columns: predicted Q1-Q4)", ""]
    lines += ["| | Q1 | Q2 | Q3 | Q4 |", "|---|---|---|---|---|"]
    lines += [f"| Q{i + 1} | " + " | ".join(str(x) for x in confusion[i]) + " |" for i in range(4)]
    lines += [
        "",
        f"playback level, {level['clips']} real clips (fold 0's held-out) x gains {level['gains_db']} dB: "
        f"largest change of static V/A {level['largest_change']:.4f}, quadrant changed on "
        f"{len(level['quadrant_changed'])} ({', '.join(level['quadrant_changed']) or 'none'})",
    ]
    auc = {m: [f["auc"][m] for f in mood_scores if m in f["auc"]] for m in vocab}
    n_pos = {m: sum(f["positives"][m] for f in mood_scores) for m in vocab}
    macro = float(np.mean([np.mean(v) for v in auc.values()]))
    lines += [
        "",
        f"AllMusic mood tags ({len(vocab)} moods on >= {mood_tags.MIN_CLIPS} clips): ROC-AUC mean over folds, "
        f"macro {macro:.3f}; calibration: expected calibration error "
        f"{np.mean([f['ece'] for f in mood_scores]):.3f}, mean probability "
        f"{np.mean([f['mean_probability'] for f in mood_scores]):.3f} against a tag rate "
        f"{np.mean([f['rate'] for f in mood_scores]):.3f}",
        "",
        "| mood | clips | ROC-AUC |",
        "|---|---|---|",
    ]
    lines += [
        f"| {m} | {n_pos[m]} | {np.mean(auc[m]):.3f} ± {np.std(auc[m]):.3f} |"
        for m in sorted(vocab, key=lambda m: -np.mean(auc[m]))
    ]
    text = "\n".join(lines)
    print(text)
    (out / "report.md").write_text(text + "\n")
    result = {
        "table": table,
        "confusion": confusion.tolist(),
        "level": level,
        "moods": {"vocabulary": vocab, "macro_auc": macro, "auc": auc, "folds": mood_scores},
    }
    (out / "report.json").write_text(json.dumps(result, indent=1))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, type=Path, help="run directory of configs/mood_4q.yaml")
    ap.add_argument("--old-model", type=Path, help="a model file to score beside ours (never trained on 4Q)")
    ap.add_argument("--out", type=Path, help="output folder (default: <run>/report)")
    ap.add_argument("--level-clips", type=int, default=40, help="held-out clips of fold 0 in the level test")
    a = ap.parse_args()
    report(a.run, a.old_model, a.out, a.level_clips)


if __name__ == "__main__":
    main()
