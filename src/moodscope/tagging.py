"""Per-tag decision thresholds for emotion tagging: :func:`choose_thresholds` maximises F1 on validation data.

The functions take numpy arrays (anything ``np.asarray`` accepts), validate them mir_eval-style (a
``ValueError`` naming the problem) and return numpy arrays. No torch, no I/O.
"""

from __future__ import annotations

import numpy as np

__all__ = ["choose_thresholds"]


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

    Predictions then use ``prob >= threshold`` .

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
