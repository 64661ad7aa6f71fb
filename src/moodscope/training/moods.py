"""Human-labelled mood tags for the default model: AllMusic's moods of 4Q, fitted on the frozen features.

The default model's ``tags`` are MusiCNN's own last.fm tags (what MSD listeners typed). :func:`fit_moods` adds
a second vocabulary learnt from editors' labels: the moods AllMusic gave to 4Q's clips (``Track.meta
["moods_allmusic"]``, AllMusic's grouping kept: "Nervous/Jittery" is one mood), each mood with at least
:data:`MIN_CLIPS` clips in the training data. One logistic regression per mood on the statistics the clip head
reads (:func:`moodscope.models.musicnn_va.fit_mood_head`); ``predict`` reports them as ``moods``.
:func:`score_moods` gives per-mood ROC-AUC and the calibration of the probabilities on held-out clips.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

#: a mood enters the vocabulary with at least this many training clips (the issue's "~30 moods with >= 20")
MIN_CLIPS = 20
#: inverse L2 strength of the per-mood logistic regressions (chosen on 4Q's artist-grouped folds, 0.001-0.1)
DEFAULT_C = 0.003
META_KEY = "moods_allmusic"


def vocabulary(tracks, *, min_clips: int = MIN_CLIPS) -> list[str]:
    """The moods on at least ``min_clips`` of ``tracks`` (``meta["moods_allmusic"]``), sorted by name."""
    count = Counter(m for t in tracks for m in set(t.meta.get(META_KEY) or ()))
    return sorted(m for m, n in count.items() if n >= min_clips)


def _windows(items, window_steps: int) -> list[np.ndarray]:
    """Each item's first ``window_steps`` feature rows, ``(1, steps, n_bins)`` (4Q's clips are one window)."""
    return [np.asarray(it.feats[:window_steps], dtype=np.float32)[None] for it in items]


def _labels(items, tracks_by_id, names) -> np.ndarray:
    return np.array(
        [[m in set(tracks_by_id[it.id].meta.get(META_KEY) or ()) for m in names] for it in items], dtype=int
    )


def fit_moods(model, items, tracks_by_id, names, *, window_steps: int, c: float = DEFAULT_C) -> dict:
    """Fit ``model``'s mood head for the moods ``names`` on ``items`` (their tracks in ``tracks_by_id``)."""
    from ..models.musicnn_va import fit_mood_head

    return fit_mood_head(
        model, _windows(items, window_steps), _labels(items, tracks_by_id, names), names, c=c
    )


def score_moods(model, items, tracks_by_id, *, window_steps: int, bins: int = 10) -> dict:
    """Per-mood ROC-AUC of ``model``'s mood head on ``items``, and the calibration of its probabilities.

    Returns ``{"auc": {mood: auc}, "positives": {mood: n}, "ece": expected calibration error over all
    (clip, mood) pairs in ``bins`` equal-width bins, "mean_probability", "rate"}``; a mood with no positive
    or no negative clip among ``items`` has no AUC."""
    from sklearn.metrics import roc_auc_score

    names = list(model.moods)
    with torch.no_grad():
        P = np.array(
            [
                model.mood_probabilities(torch.as_tensor(x)[None])[0].numpy()
                for x in _windows(items, window_steps)
            ]
        )
    Y = _labels(items, tracks_by_id, names)
    auc = {
        m: float(roc_auc_score(Y[:, j], P[:, j])) for j, m in enumerate(names) if 0 < Y[:, j].sum() < len(Y)
    }
    p, y = P.ravel(), Y.ravel()
    which = np.minimum((p * bins).astype(int), bins - 1)
    ece = sum(
        abs(p[which == b].mean() - y[which == b].mean()) * np.mean(which == b) for b in np.unique(which)
    )
    return {
        "auc": auc,
        "positives": {m: int(Y[:, j].sum()) for j, m in enumerate(names)},
        "ece": float(ece),
        "mean_probability": float(p.mean()),
        "rate": float(y.mean()),
    }
