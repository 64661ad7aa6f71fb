"""Can a level regression fitted on VGMIDI's piece means set the curve's level better than the default model?

    python tools/vgmidi_level_report.py --run runs/default-model-6/vgmidi_cv

``--run`` is the run directory of ``moodscope train --config configs/mood_vgmidi.yaml`` (series-grouped folds).
Per fold, a ridge regression from a piece's mean (or mean and std) features over its steps to its listeners'
mean valence and arousal is fitted on the fold's training pieces and sets the level of the held-out pieces'
curves (the fold model's curve minus its mean, plus the level), alone (``w`` 1) or averaged with the model's own
level (``w`` 0.5), on the default model's features and on the issue's baseline features (MusiCNN + mode). Prints
static PCC (across pieces), per-piece CCC and pooled CCC beside the fold models' own (``tools/vgmidi_report.py``
defines the figures). Offline: no model is trained; a few minutes once the features are cached.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.linear_model import Ridge
from vgmidi_report import BASELINE_FEATURES, _labelled, scores

from moodscope.inference.predictor import Predictor
from moodscope.training.data import load_tracks, make_folds, tracks_to_items
from moodscope.training.experiment import resolve_config


def _piece(x: np.ndarray, kind: str) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x.mean(0) if kind == "mean" else np.concatenate([x.mean(0), x.std(0)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    a = ap.parse_args()
    cfg = resolve_config(a.run / "config.yaml")
    ds = load_tracks(cfg)
    features = Predictor.from_file(a.run / "fold_0" / "model.safetensors").features
    items = [it for it in tracks_to_items(ds.tracks, features, progress=True)[0] if it.dynamic is not None]
    by_id = {it.id: it for it in items}
    base = {it.id: it for it in tracks_to_items(ds.tracks, BASELINE_FEATURES, progress=True)[0]}
    folds = make_folds(cfg, ds, items)
    curves, train_of = {}, {}
    for k, fold in enumerate(folds):
        pred = Predictor.from_file(a.run / f"fold_{k}" / "model.safetensors")
        for t in fold.test:
            curves[t] = np.asarray(pred.task.predict_item(pred.model, by_id[t]))[:, :2]
            train_of[t] = [i for i in list(fold.train) + list(fold.val or []) if i in by_id]

    def row(name, pairs):
        s = scores(pairs)
        print(
            f"{name:44s} static {s['valence_static_pcc']:.3f} / {s['arousal_static_pcc']:.3f}  "
            f"per-piece CCC {s['valence_piece_ccc']:.3f} / {s['arousal_piece_ccc']:.3f}  "
            f"pooled CCC {s['valence_pooled_ccc']:.3f} / {s['arousal_pooled_ccc']:.3f}"
        )

    row("fold models' own level", [_labelled(by_id[t], c) for t, c in curves.items()])
    for feats, fname in ((by_id, "model features"), (base, "baseline features")):
        for kind in ("mean", "meanstd"):
            for alpha in (10.0, 100.0, 1000.0, 10000.0):
                level = {}
                for fold in folds:
                    tr = train_of[fold.test[0]]
                    X = np.array([_piece(feats[t].feats, kind) for t in tr])
                    Y = np.array([np.nanmean(by_id[t].dynamic, 0) for t in tr])
                    mu, sd = X.mean(0), X.std(0) + 1e-8
                    m = Ridge(alpha=alpha).fit((X - mu) / sd, Y)
                    for t in fold.test:
                        level[t] = m.predict(((_piece(feats[t].feats, kind) - mu) / sd)[None])[0]
                for w in (1.0, 0.5):
                    pairs = []
                    for t, c in curves.items():
                        own = c.mean(0)
                        pairs.append(_labelled(by_id[t], c - own + w * level[t] + (1 - w) * own))
                    row(f"{fname}, {kind}, alpha {alpha:g}, w {w}", pairs)


if __name__ == "__main__":
    main()
