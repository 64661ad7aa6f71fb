"""Pure helpers for emotion tagging: track-level aggregation and per-tag decision thresholds.

- :func:`aggregate_probabilities`: segment probabilities ``(n_segments, n_tags)`` -> track ``(n_tags,)``.
- :func:`choose_thresholds`: per-tag thresholds that maximise F1 on validation data.
- :func:`apply_thresholds`: probabilities -> binary tags.

All functions take numpy arrays (anything ``np.asarray`` accepts), validate them mir_eval-style (a
``ValueError`` naming the problem) and return numpy arrays. No torch, no I/O.
"""

from __future__ import annotations

import numpy as np

__all__ = ["AGGREGATIONS", "aggregate_probabilities", "apply_thresholds", "choose_thresholds"]

#: Track-level aggregations of segment probabilities.
AGGREGATIONS = ("mean", "max")


def _as_prob_matrix(p, name: str) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"{name} must be 2-d (items, n_tags), got shape {p.shape}")
    if p.shape[0] == 0 or p.shape[1] == 0:
        raise ValueError(f"{name} is empty, shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} contains NaN or inf")
    if p.min() < 0 or p.max() > 1:
        raise ValueError(f"{name} must be probabilities in [0, 1], got range [{p.min():g}, {p.max():g}]")
    return p


def aggregate_probabilities(probs, *, method: str = "mean", weights=None) -> np.ndarray:
    """Aggregate segment tag probabilities into track-level probabilities.

    Parameters
    ----------
    probs : np.ndarray [shape=(n_segments, n_tags)]
        Sigmoid outputs of the tagger for each piece of the track.
    method : {"mean", "max"}
        ``"mean"`` (default): the average over segments, i.e. how much of the track carries the tag --
        CAL500's song-level labels describe the song as a whole, and the mean is robust to one odd
        segment. ``"max"``: the strongest segment, for "does the tag occur anywhere".
    weights : np.ndarray [shape=(n_segments,)], optional
        Non-negative weights for ``"mean"`` (e.g. segment durations when the last piece is shorter).

    Returns
    -------
    np.ndarray [shape=(n_tags,)]

    Examples
    --------
    >>> aggregate_probabilities([[0.2, 0.9], [0.4, 0.1]])
    array([0.3, 0.5])
    >>> aggregate_probabilities([[0.2, 0.9], [0.4, 0.1]], method="max")
    array([0.4, 0.9])
    """
    p = _as_prob_matrix(probs, "probs")
    if method not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {method!r}; choose one of {', '.join(AGGREGATIONS)}")
    if method == "max":
        if weights is not None:
            raise ValueError("weights apply to method='mean' only")
        return p.max(axis=0)
    if weights is None:
        return p.mean(axis=0)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (p.shape[0],) or not np.all(np.isfinite(w)) or w.min() < 0 or w.sum() <= 0:
        raise ValueError(f"weights must be {p.shape[0]} finite non-negative values with a positive sum")
    return (w[:, None] * p).sum(axis=0) / w.sum()


def choose_thresholds(y_true, y_prob, *, default: float = 0.5) -> np.ndarray:
    """Per-tag thresholds that maximise F1 on validation data.

    For each tag, every cut between consecutive distinct validation scores is a candidate: predicting
    positive for the ``k`` highest distinct scores (``score >= s_k``, scores sorted descending
    ``s_1 > s_2 > ... > s_m``) gives ``F1_k = 2 TP / (2 TP + FP + FN)``. These ``m`` cuts are all the
    different predictions a threshold can make that include at least one positive, so the best of them
    is the exact F1 maximum (predicting no positive gives F1 = 0, never better).

    Rules:

    - ties in F1 are broken towards the *smallest* ``k`` (the highest threshold, fewest predicted
      positives: the more precise of equally good decisions);
    - the returned threshold is the midpoint ``(s_k + s_{k+1}) / 2`` between the lowest score predicted
      positive and the highest score predicted negative, the value farthest from both (any value in
      ``(s_{k+1}, s_k]`` makes the same validation predictions); if every item is predicted positive it is
      ``s_m / 2``;
    - a tag with no positive example gets ``default`` (its F1 is undefined).

    Predictions then use ``prob >= threshold`` (:func:`apply_thresholds`).

    Parameters
    ----------
    y_true : np.ndarray [shape=(n_items, n_tags)]
        Binary (0/1 or bool) validation labels.
    y_prob : np.ndarray [shape=(n_items, n_tags)]
        Predicted probabilities.
    default : float
        Threshold for tags without positives.

    Returns
    -------
    np.ndarray [shape=(n_tags,)]

    Examples
    --------
    >>> choose_thresholds([[1], [0], [1], [0]], [[0.9], [0.8], [0.7], [0.1]])
    array([0.4])
    """
    p = _as_prob_matrix(y_prob, "y_prob")
    y = np.asarray(y_true)
    if y.shape != p.shape:
        raise ValueError(f"y_true shape {y.shape} differs from y_prob shape {p.shape}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("y_true must be binary (0/1)")
    if not 0.0 <= default <= 1.0:
        raise ValueError(f"default threshold must be in [0, 1], got {default}")
    y = y.astype(bool)
    out = np.full(p.shape[1], float(default))
    for j in range(p.shape[1]):
        n_pos = int(y[:, j].sum())
        if n_pos == 0:
            continue
        scores = p[:, j]
        distinct = np.unique(scores)[::-1]  # s_1 > s_2 > ... > s_m
        # counts of positives / negatives at each distinct score, in descending order of score
        idx = np.searchsorted(-distinct, -scores)  # position of each item's score in `distinct`
        pos_at = np.bincount(idx, weights=y[:, j], minlength=distinct.size)
        all_at = np.bincount(idx, minlength=distinct.size)
        tp = np.cumsum(pos_at)  # TP when predicting positive for scores >= s_k
        fp = np.cumsum(all_at) - tp
        f1 = 2 * tp / (2 * tp + fp + (n_pos - tp))
        k = int(np.argmax(f1))  # first maximum = smallest k
        out[j] = (distinct[k] + distinct[k + 1]) / 2 if k + 1 < distinct.size else distinct[k] / 2
    return out


def apply_thresholds(probs, thresholds) -> np.ndarray:
    """Binary tags ``probs >= thresholds`` (broadcast over items).

    Parameters
    ----------
    probs : np.ndarray [shape=(n_tags,) or (n_items, n_tags)]
    thresholds : float or np.ndarray [shape=(n_tags,)]

    Returns
    -------
    np.ndarray of bool, same shape as ``probs``.
    """
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)
    if p.ndim not in (1, 2):
        raise ValueError(f"probs must be 1-d or 2-d, got shape {p.shape}")
    if t.ndim > 1 or (t.ndim == 1 and t.shape[0] != p.shape[-1]):
        raise ValueError(f"thresholds shape {t.shape} does not match {p.shape[-1]} tags")
    return p >= t
