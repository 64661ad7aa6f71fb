"""Across cross-validation folds: each score's mean and standard deviation, and the paired t-test between two
models scored on the same folds (what ``moodscope compare`` and the report tools print)."""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import numpy as np

from .metrics import validate

__all__ = ["paired_ttest", "summarize_folds"]


def summarize_folds(fold_scores: Sequence[Mapping[str, float]]) -> OrderedDict:
    """Mean and standard deviation of each score over cross-validation folds.

    Parameters
    ----------
    fold_scores : sequence of mapping
        One ``name -> score`` dict per fold (e.g. the output of :func:`evaluate_static`); every fold
        must have the same names.

    Returns
    -------
    OrderedDict
        ``name -> (mean, std)`` in the key order of the first fold. ``std`` is the sample standard
        deviation (``ddof=1``) when there is more than one fold and ``0.0`` for a single fold. A NaN
        score in any fold makes that name's mean and std NaN.
    """
    folds = list(fold_scores)
    if not folds:
        raise ValueError("no folds to summarize")
    names = list(folds[0])
    for i, fold in enumerate(folds):
        if set(fold) != set(names):
            diff = sorted(set(fold) ^ set(names))
            raise ValueError(f"fold {i} does not have the same score names as fold 0 (differ: {diff})")
    out = OrderedDict()
    for name in names:
        try:
            # None: a metric undefined on that fold, read back from JSON (where NaN is written as null)
            values = np.array([float("nan") if f[name] is None else float(f[name]) for f in folds])
        except (TypeError, ValueError):
            raise ValueError(f"score {name!r} is not numeric in every fold") from None
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        out[name] = (float(np.mean(values)), std)
    return out


def paired_ttest(a_scores, b_scores) -> tuple[float, float]:
    """Paired two-sided t-test between two systems' per-fold scores (``scipy.stats.ttest_rel``).

    Parameters
    ----------
    a_scores, b_scores : array-like [shape=(n_folds,)]
        Scores of system A and system B on the same folds.

    Returns
    -------
    t, p : float
        Positive ``t`` means A scores higher. ``(nan, nan)`` for fewer than 2 folds, and scipy's
        ``(nan, nan)`` when every difference is 0 (``(±inf, 0.0)`` when the differences are equal
        and non-zero); no warning is emitted.
    """
    from scipy import stats

    a, b = validate(a_scores, b_scores)
    if a.size < 2:
        return float("nan"), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_rel(a, b)
    return float(res.statistic), float(res.pvalue)
