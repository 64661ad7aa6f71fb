"""The default model's validation figures with the distilled front end against the full network (issue 25).

    python tools/student_report.py --run runs/default-model-3/cv [--emopia ../shared/data/emopia] [--out DIR]

``--run`` is the artist-grouped 4Q cross-validation of the default recipe (``configs/mood_4q.yaml``; what
``tools/make_default_model.py`` leaves in ``<out>/cv``). For every fold, its model scores its held-out clips
twice: on features from the full MusiCNN and from the student (``frontend: student``). Printed and written
(``student.md``, ``student.json``):

- quadrant accuracy, valence and arousal ROC-AUC, mean ± std over folds, each way, with a paired t-test;
- agreement per clip: embedding cosine (mean over 0.5 s steps), largest static V/A difference, quadrant
  agreement -- for fold 0's clips, which the student never heard (``tools/distil_musicnn.py --holdout 0``),
  and for the other folds' clips, whose audio (never their labels) it was distilled on;
- with ``--emopia``: the bundled default model on EMOPIA's official test split, each way;
- the playback-level test of issue 23 (gains -30, -20, -10, +10 dB) through the student, on fold 0's clips.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from fourq_report import GAINS_DB, _level_test, _model_static, _scores  # noqa: E402  (tools/ on sys.path when run as a script)

from moodscope.emotion import quadrant_index
from moodscope.inference.predictor import Predictor
from moodscope.significance import paired_ttest
from moodscope.training.data import load_tracks, make_folds, tracks_to_items
from moodscope.training.experiment import resolve_config

METRICS = ("quadrant_accuracy", "valence_auc", "arousal_auc", "share_v_pos", "share_a_pos")


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a[:, :200], b[:, :200]
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12
    return float(np.mean(num / den))


def _emopia(root: Path) -> dict:
    from moodscope.datasets import load_dataset
    from moodscope.datasets.splits import emopia_split

    ds = load_dataset("emopia", root, soundfont="FluidR3_GM", sr=16000)
    _, test = emopia_split(ds.select())
    tracks = [t for t in ds.tracks if t.id in set(test)]
    out = {}
    for fe in ("full", "student"):
        pred = Predictor.from_file(None, frontend=fe)
        items, _ = tracks_to_items(tracks, pred.features, progress=False)
        v, a = _model_static(pred, items)
        q = np.array([int(t.meta["quadrant"]) for t in tracks if t.id in {it.id for it in items}])
        pq = quadrant_index(v, a) + 1
        sv = np.where(np.isin(q, (1, 4)), 1, -1)
        sa = np.where(np.isin(q, (1, 2)), 1, -1)
        out[fe] = {
            "clips": len(items),
            "quadrant_accuracy": float(np.mean(pq == q)),
            "valence_sign_accuracy": float(np.mean(np.sign(v) == sv)),
            "arousal_sign_accuracy": float(np.mean(np.sign(a) == sa)),
        }
    return out


def report(run: Path, emopia: Path | None, out: Path, level_clips: int) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    cfg = resolve_config(run / "config.yaml")
    ds = load_tracks(cfg)
    quad_of = {t.id: int(t.meta["quadrant"]) for t in ds.tracks}
    track_of = {t.id: t for t in ds.tracks}
    fold_models = sorted(run.glob("fold_*/model.safetensors"))
    full0 = Predictor.from_file(fold_models[0], frontend="full")
    fast0 = Predictor.from_file(fold_models[0], frontend="student")
    items = {
        fe: tracks_to_items(ds.tracks, p.features, progress=True)[0]
        for fe, p in (("full", full0), ("student", fast0))
    }
    by_id = {fe: {it.id: it for it in its} for fe, its in items.items()}
    folds = make_folds(cfg, ds, items["full"])
    rows = {"full": [], "student": []}
    agree = {"fold 0 (never heard by the student)": [], "folds 1-4 (audio heard in distillation)": []}
    for k, (fold, path) in enumerate(zip(folds, fold_models)):
        q = np.array([quad_of[i] for i in fold.test])
        got = {}
        for fe in ("full", "student"):
            pred = Predictor.from_file(path, frontend=fe)
            v, a = _model_static(pred, [by_id[fe][i] for i in fold.test])
            rows[fe].append(_scores(q, v, a))
            got[fe] = (v, a)
        group = agree[list(agree)[0 if k == 0 else 1]]
        for j, i in enumerate(fold.test):
            (vf, af), (vs, as_) = got["full"], got["student"]
            group.append(
                {
                    "cos": _cos(by_id["full"][i].feats, by_id["student"][i].feats),
                    "dv": abs(vf[j] - vs[j]),
                    "da": abs(af[j] - as_[j]),
                    "same_quadrant": bool(
                        quadrant_index(vf[j : j + 1], af[j : j + 1])[0]
                        == quadrant_index(vs[j : j + 1], as_[j : j + 1])[0]
                    ),
                }
            )
    table = {}
    for fe, per_fold in rows.items():
        table[fe] = {}
        for m in METRICS:
            vals = np.array([f[m] for f in per_fold])
            table[fe][m] = {"mean": float(vals.mean()), "std": float(vals.std()), "folds": vals.tolist()}
            if fe == "student":
                table[fe][m]["p_vs_full"] = paired_ttest(vals, np.array(table["full"][m]["folds"]))[1]
    agreement = {
        name: {
            "clips": len(g),
            "embedding_cosine_mean": float(np.mean([x["cos"] for x in g])),
            "embedding_cosine_worst_clip": float(np.min([x["cos"] for x in g])),
            "static_abs_diff_mean": float(np.mean([max(x["dv"], x["da"]) for x in g])),
            "static_abs_diff_max": float(np.max([max(x["dv"], x["da"]) for x in g])),
            "within_0.02": float(np.mean([max(x["dv"], x["da"]) <= 0.02 for x in g])),
            "quadrant_agreement": float(np.mean([x["same_quadrant"] for x in g])),
        }
        for name, g in agree.items()
    }
    level = _level_test(fast0, [track_of[i] for i in folds[0].test[:level_clips]])
    result = {"cv": table, "agreement": agreement, "level_student": level}
    if emopia is not None:
        result["emopia_test"] = _emopia(emopia)

    lines = ["| front end | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
    for fe, r in table.items():
        cells = [
            f"{r[m]['mean']:.3f} ± {r[m]['std']:.3f}"
            + (f" (p {r[m]['p_vs_full']:.2f})" if "p_vs_full" in r[m] else "")
            for m in METRICS
        ]
        lines.append(f"| {fe} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| clips | embedding cosine mean / worst clip | static |dV|,|dA| mean / max | within 0.02 | same quadrant |",
        "|---|---|---|---|---|",
    ]
    for name, g in agreement.items():
        lines.append(
            f"| {name}: {g['clips']} | {g['embedding_cosine_mean']:.4f} / {g['embedding_cosine_worst_clip']:.4f} | "
            f"{g['static_abs_diff_mean']:.4f} / {g['static_abs_diff_max']:.4f} | {g['within_0.02']:.3f} | "
            f"{g['quadrant_agreement']:.3f} |"
        )
    lines.append(
        f"\nplayback level through the student, {level['clips']} clips x {list(GAINS_DB)} dB: largest change "
        f"{level['largest_change']:.4f}, quadrant changed {len(level['quadrant_changed'])} times"
    )
    if "emopia_test" in result:
        for fe, r in result["emopia_test"].items():
            lines.append(
                f"EMOPIA test ({r['clips']} clips), {fe}: quadrant {r['quadrant_accuracy']:.3f}, valence sign "
                f"{r['valence_sign_accuracy']:.3f}, arousal sign {r['arousal_sign_accuracy']:.3f}"
            )
    text = "\n".join(lines)
    print(text)
    (out / "student.md").write_text(text + "\n")
    (out / "student.json").write_text(json.dumps(result, indent=1))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--run", required=True, type=Path, help="the 4Q cross-validation run (configs/mood_4q.yaml)"
    )
    ap.add_argument("--emopia", type=Path, help="EMOPIA's root: also score its official test split")
    ap.add_argument("--out", type=Path, help="output folder (default: <run>/student)")
    ap.add_argument("--level-clips", type=int, default=40)
    a = ap.parse_args()
    report(a.run, a.emopia, a.out or a.run / "student", a.level_clips)


if __name__ == "__main__":
    main()
