"""Make the bundled default model (``src/moodscope/assets/default_musicnn_va.safetensors``) and its numbers.

    python tools/make_default_model.py [--emopia ../shared/data/emopia] [--fourq ../shared/data/4q-given]
        [--vgmidi ../shared/data/vgmidi-given] [--old-model OLD.safetensors] [--curve-model NAME=FILE ...]
        [--out runs/default-model] [--resume]

1. ``configs/mood_4q.yaml``: artist-grouped 5-fold cross-validation on 4Q (EMOPIA's training clips, VGMIDI's
   curves and the synthetic corpus as training-only data in every fold), then ``tools/fourq_report.py`` on it: the table
   against ``--old-model`` (the default model before issue 23) and the logistic-regression baseline, the
   confusion matrix and predicted shares, the playback-level test on real clips, and the AllMusic mood tags'
   per-tag ROC-AUC (``<out>/cv/report/report.md``);
2. ``configs/mood_vgmidi.yaml``: series-grouped 5-fold cross-validation on VGMIDI (4Q, EMOPIA's training clips
   and the synthetic corpus training-only), then ``tools/vgmidi_report.py``: the curve table per piece, across
   pieces and pooled, against the demo's DAMFF, each ``--curve-model`` and the ridge baseline (``<out>/vgmidi_cv/report/report.md``);
   then ``configs/mood_default.yaml``: the same recipe trained on all of it (EMOPIA train, all 4Q, all VGMIDI,
   the synthetic corpus; seed 0, fixed in advance), tested on EMOPIA's official test split;
3. that model's mood head fitted on all 4Q clips (:func:`moodscope.training.moods.fit_moods`), the curve of
   the model on the synthetic corpus of seed 0 (which it never heard; it trained on seed 1);
4. the model copied into the package with what it was trained on, the licences and the numbers of 1-3 in its
   metadata.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from moodscope.datasets import load_dataset
from moodscope.demo import demo_config
from moodscope.inference.predictor import Predictor, bundled_model_path
from moodscope.modelfile import load_model, save_model
from moodscope.training import moods as mood_tags
from moodscope.training.data import make_folds, synthetic_root, tracks_to_items
from moodscope.training.experiment import run_experiment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from fourq_report import report  # noqa: E402
from vgmidi_report import report as vgmidi_report  # noqa: E402

CV_CONFIG = ROOT / "configs" / "mood_4q.yaml"
VGMIDI_CONFIG = ROOT / "configs" / "mood_vgmidi.yaml"
FINAL_CONFIG = ROOT / "configs" / "mood_default.yaml"

DESCRIPTION = (
    "default: a clip-level quadrant classifier (the level), a BiGRU, a linear map of 8 s past averages and a "
    "3-member BiLSTM ensemble (the movement) on frozen MSD-MusiCNN embeddings (+ mode features), every track "
    "brought to -14 LUFS first; on solo piano the level half from a ridge fitted on VGMIDI's and EMOPIA's "
    "labels; AllMusic mood tags"
)

TRAINED_ON = (
    "4Q audio emotion dataset, the given half (461 real recordings of 331 artists, quadrants and AllMusic moods); "
    "EMOPIA 1.0 official train split (876 clips, FluidR3_GM rendering), validation on its val split; VGMIDI, the "
    "given half (100 piano pieces, listeners' valence-arousal per bar, FluidR3_GM rendering) for the curve's "
    "movement and, with EMOPIA, the level of solo piano; moodscope's synthetic corpus (48 clips x 45 s, seed 1) "
    "for the curve"
)

LICENCES = (
    "4Q audio emotion dataset (Panda, Malheiro & Paiva 2018; audio clips from AllMusic): research and "
    "non-commercial use only; EMOPIA 1.0 labels and MIDI (Hung et al., ISMIR 2021): CC BY-NC-SA 4.0 -- "
    "non-commercial, share-alike; MusiCNN MSD weights (Pons & Serra, musicnn 0.1.0): ISC; soundfont used to "
    "render the MIDI: FluidR3_GM (MIT); VGMIDI (Ferreira & Whitehead, ISMIR 2019; no licence stated, "
    "arrangements of copyrighted game music): research use only; the synthetic corpus: moodscope's own. This "
    "model file is therefore for research and non-commercial use."
)


def curve_on_unseen_corpus(model_path: Path) -> dict:
    """Per-song curve metrics of ``model_path`` on the seed-0 synthetic corpus: all songs and the demo's 8."""
    pred = Predictor.from_file(model_path)
    root = synthetic_root({"n_clips": 48, "duration": 45.0, "seed": 0})
    ds = load_dataset("folder", root)
    items, _ = tracks_to_items(ds.tracks, pred.features, progress=False)
    demo_test = set(make_folds(demo_config(root), ds, items)[0].test)
    preds = [pred.task.predict_item(pred.model, it) for it in items]
    out = {}
    for name, keep in (("all_48", lambda i: True), ("demo_held_out_8", lambda i: i in demo_test)):
        sel = [(it, p) for it, p in zip(items, preds) if keep(it.id)]
        m = pred.task.evaluate([it for it, _ in sel], [p for _, p in sel])
        out[name] = {k: round(float(v), 4) for k, v in m.items()}
    return out


def rounded(x):
    """``x`` with every float rounded to 4 decimals (nested dicts and lists): the figures of model metadata."""
    if isinstance(x, float):
        return round(x, 4)
    if isinstance(x, dict):
        return {k: rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [rounded(v) for v in x]
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--emopia", default="../shared/data/emopia", help="EMOPIA 1.0 (run from the repository root)"
    )
    ap.add_argument("--fourq", default="../shared/data/4q-given", help="4Q, the given half")
    ap.add_argument("--vgmidi", default="../shared/data/vgmidi-given", help="VGMIDI, the given half")
    ap.add_argument(
        "--old-model", type=Path, help="the model to compare with on 4Q (e.g. the previous default)"
    )
    ap.add_argument(
        "--curve-model",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="a model scored as it is in the VGMIDI table (repeatable; e.g. the default before issue 24)",
    )
    ap.add_argument("--out", default="runs/default-model", type=Path)
    ap.add_argument("--resume", action="store_true", help="continue the runs in --out")
    a = ap.parse_args()

    # 1. cross-validation on 4Q and its report
    cv_dir = a.out / "cv"
    cv = run_experiment(
        str(CV_CONFIG),
        [f"data.root={a.fourq}", f"data.also.0.root={a.emopia}", f"data.also.2.root={a.vgmidi}"],
        out_dir=cv_dir,
        resume=a.resume,
    )
    rep = report(cv_dir, a.old_model, cv_dir / "report")

    # 2. cross-validation on VGMIDI's curves and its report
    vg_dir = a.out / "vgmidi_cv"
    vg = run_experiment(
        str(VGMIDI_CONFIG),
        [f"data.root={a.vgmidi}", f"data.also.0.root={a.fourq}", f"data.also.1.root={a.emopia}"],
        out_dir=vg_dir,
        resume=a.resume,
    )
    curve_models = {"demo DAMFF": bundled_model_path("demo")}
    for m in a.curve_model:
        name, _, path = m.partition("=")
        curve_models[name] = Path(path)
    vg_rep = vgmidi_report(vg_dir, curve_models, vg_dir / "report")

    # 2. the recipe on all of it, tested on EMOPIA's test split
    final_dir = a.out / "final"
    final = run_experiment(
        str(FINAL_CONFIG),
        [f"data.root={a.emopia}", f"data.also.0.root={a.fourq}", f"data.also.2.root={a.vgmidi}"],
        out_dir=final_dir,
        resume=a.resume,
    )
    model_file = final_dir / "fold_0" / "model.safetensors"

    # 3. the mood head on all of 4Q, the curve on the unseen synthetic corpus
    b = load_model(model_file)
    fourq = load_dataset("4q", a.fourq)
    items, _ = tracks_to_items(fourq.tracks, b.features, progress=True)
    vocab = mood_tags.vocabulary(fourq.tracks)
    window = Predictor.from_file(model_file).task.window_segments
    fit = mood_tags.fit_moods(b.model, items, {t.id: t for t in fourq.tracks}, vocab, window_steps=window)
    curve = curve_on_unseen_corpus(model_file)
    print(json.dumps(curve, indent=1))

    # 4. into the package, with its numbers
    cv_summary = {k: {"mean": v["mean"], "std": v["std"]} for k, v in cv["summary"].items()}
    info = dict(b.info)
    info.update(
        {
            "description": DESCRIPTION,
            "trained_on": TRAINED_ON,
            "licences": LICENCES,
            "moods_source": "AllMusic editors' mood tags of 4Q's clips (MoodsStr: AllMusic's own grouping), the "
            f"{len(vocab)} moods on >= {mood_tags.MIN_CLIPS} of 461 clips; one logistic regression per mood "
            f"(C = {mood_tags.DEFAULT_C}) on the clip head's window statistics",
            "moods_vocabulary": vocab,
            "measured": rounded(
                {
                    "fourq_cv": cv_summary,
                    "fourq_cv_report": {k: rep[k] for k in ("table", "confusion", "level")},
                    "fourq_cv_moods_auc": {m: sum(v) / len(v) for m, v in rep["moods"]["auc"].items()},
                    "fourq_cv_moods_macro_auc": rep["moods"]["macro_auc"],
                    "emopia_test": final["summary"],
                    "protocol": "4Q: artist-grouped 5-fold cross-validation (seed 0), mean and std over folds; "
                    "EMOPIA: official test split (88 clips, FluidR3_GM rendering), seed 0",
                    "synthetic_curve_unseen": curve,
                    "vgmidi_cv": {k: vg_rep["rows"][k] for k in vg_rep["rows"]},
                    "vgmidi_cv_summary": {
                        k: {"mean": v["mean"], "std": v["std"]} for k, v in vg["summary"].items()
                    },
                    "vgmidi_protocol": "series-grouped 5-fold cross-validation (seed 0) on the given half; per "
                    "piece = Pearson/CCC of the 2 Hz curve against the listeners' bars, mean over the 100 pieces",
                    "mood_fit": {"windows": fit["windows"]},
                }
            ),
        }
    )
    dest = bundled_model_path("default")
    save_model(dest, b.model, b.features, info)
    print(dest, f"{dest.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
