"""Make the bundled default model (``src/moodscope/assets/default_musicnn_va.safetensors``) and its numbers.

    python tools/make_default_model.py --emopia /path/to/EMOPIA_1.0 [--out runs/default-model]

1. ``moodscope compare`` of ``configs/mood_emopia.yaml`` with the models ``musicnn_va,classical,demo``: EMOPIA's
   official split, 5 seeds (``split.folds = 5``), the table in ``<out>/compare/compare.md``;
2. the curve of the seed-0 model (fold 0) on the synthetic corpus of seed 0, which it never heard (it trained on
   the corpus of seed 1): per-song CCC over all 48 songs and over the 8 songs the demo holds out;
3. the seed-0 model is copied into the package with what it was trained on, the licences, and the numbers of
   steps 1 and 2 in its metadata. The seed is fixed in advance (fold 0), not picked by its test score.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from moodscope.datasets import load_dataset
from moodscope.demo import demo_config
from moodscope.inference.predictor import Predictor, bundled_model_path
from moodscope.modelfile import load_model, save_model
from moodscope.training.compare import run_compare
from moodscope.training.data import make_folds, synthetic_root, tracks_to_items

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "mood_emopia.yaml"

LICENCES = (
    "EMOPIA 1.0 labels and MIDI (Hung et al., ISMIR 2021): CC BY-NC-SA 4.0 -- non-commercial, share-alike; "
    "MusiCNN MSD weights (Pons & Serra, musicnn 0.1.0): ISC; soundfonts used to render the MIDI: FluidR3_GM "
    "(MIT), TimGM6mb (GPL-2); the synthetic corpus: moodscope's own"
)


def curve_on_unseen_corpus(model_path: Path) -> dict:
    """Per-song curve metrics of ``model_path`` on the seed-0 synthetic corpus: all songs and the demo's 8."""
    pred = Predictor.from_file(model_path)
    root = synthetic_root({"n_clips": 48, "duration": 45.0, "seed": 0})
    ds = load_dataset("folder", root)
    items, _ = tracks_to_items(ds.tracks, pred.features, progress=False)
    # the demo's held-out songs: its holdout split of the same corpus
    demo_test = set(make_folds(demo_config(root), ds, items)[0].test)
    preds = [pred.task.predict_item(pred.model, it) for it in items]
    out = {}
    for name, keep in (("all_48", lambda i: True), ("demo_held_out_8", lambda i: i in demo_test)):
        sel = [(it, p) for it, p in zip(items, preds) if keep(it.id)]
        m = pred.task.evaluate([it for it, _ in sel], [p for _, p in sel])
        out[name] = {k: round(float(v), 4) for k, v in m.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--emopia", required=True, help="EMOPIA 1.0 release folder")
    ap.add_argument("--out", default="runs/default-model")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument(
        "--reuse-compare", action="store_true", help="take the table from <out>/compare/compare.json"
    )
    a = ap.parse_args()
    out = Path(a.out)
    if a.reuse_compare:
        res = {"rows": json.loads((out / "compare" / "compare.json").read_text())}
    else:
        res = run_compare(
            str(CONFIG),
            ["musicnn_va", "classical", "demo"],
            [f"data.root={a.emopia}"],
            out_dir=out / "compare",
            resume=a.resume,
        )
        print(res["table"])
    summary = {}
    for r in res["rows"]:
        summary.setdefault(r["model"], {})[r["metric"]] = {
            "mean": round(r["mean"], 4),
            "std": round(r["std"], 4),
        }
    model_file = out / "compare" / "musicnn_va" / "fold_0" / "model.safetensors"
    curve = curve_on_unseen_corpus(model_file)
    print(json.dumps(curve, indent=1))
    b = load_model(model_file)
    info = dict(b.info)
    info.update(
        {
            "description": "default: BiGRU heads on frozen MSD-MusiCNN embeddings, trained on EMOPIA quadrants "
            "(rendered piano) and synthetic-corpus curves (seed 0 of 5)",
            "trained_on": "EMOPIA 1.0 official train split (876 clips; FluidR3_GM and TimGM6mb renderings), "
            "validation on its val split; moodscope's synthetic corpus (48 clips x 45 s, seed 1) for the curve",
            "licences": LICENCES,
            "measured": {
                "emopia_test": summary["musicnn_va"],
                "emopia_test_reference_rows": {k: v for k, v in summary.items() if k != "musicnn_va"},
                "protocol": "EMOPIA official test split (88 clips, FluidR3_GM rendering), 5 seeds, mean and std",
                "synthetic_curve_unseen": curve,
            },
        }
    )
    dest = bundled_model_path("default")
    save_model(dest, b.model, b.features, info)
    print(dest, f"{dest.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
