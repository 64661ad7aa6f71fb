"""Evaluation metrics for music emotion recognition (mir_eval style).

Every metric is a pure numpy function of a ``reference`` (ground truth) and an ``estimate``
(prediction), validated by :func:`validate` which raises ``ValueError`` on malformed input.
``evaluate_*`` functions return an :class:`~collections.OrderedDict` of named scores.

Protocols
---------
- **Dynamic V-A** (DAMFF, ISMIR 2023, Sec. 4.2): CCC, PCC and RMSE are computed between the
  reference and estimated 2 Hz curve *of each song* and then averaged across songs
  (:func:`per_song`, :func:`evaluate_dynamic`).
- **Static V-A** (ADFF, Interspeech 2022, Sec. 3.2): R² and RMSE over all clips
  (:func:`evaluate_static`); accuracy for the 2- and 4-class tasks (:func:`evaluate_classes`).
  Cross-validation folds are summarised and compared in :mod:`moodscope.significance`.
- **Emotion tags**: micro/macro precision, recall, F1, ROC-AUC and PR-AUC (average precision)
  through scikit-learn (:func:`multilabel_scores`, :func:`per_tag_scores`).

Degenerate cases (documented, never a crash and never a warning)
-----------------------------------------------------------------
- A sequence is *constant* when all its values are exactly equal (``np.ptp == 0``); its variance is
  then taken as exactly 0 and its mean as its value, which avoids round-off turning a constant into
  a tiny non-zero variance.
- :func:`pcc` of a constant reference or estimate is undefined; it is returned as ``0.0``.
- :func:`ccc` uses Lin's formula ``2 cov / (var_r + var_e + (mean_r - mean_e)^2)`` with population
  (``1/n``) moments. It is defined whenever one sequence varies or the means differ (a constant
  estimate of a varying reference gives 0). The denominator is 0 only when both sequences are
  constant and equal, i.e. identical: CCC is then ``1.0``.
- :func:`r2` follows ``sklearn.metrics.r2_score`` (``force_finite=True``): a constant reference gives
  ``1.0`` for a perfect estimate, else ``0.0``. Unlike scikit-learn, "constant" is tested exactly
  (``[0.1, 0.1, 0.1]`` is constant here, whereas scikit-learn's round-off gives ~1e-31 total variance
  and an R² near -1e31), and a single sample counts as constant (scikit-learn returns NaN).

The differentiable (masked) training losses live with the tasks that use them (:mod:`moodscope.tasks`).

Examples
--------
>>> import numpy as np
>>> ref = np.array([1.0, 2.0, 3.0, 4.0]); est = np.array([2.0, 2.0, 4.0, 5.0])
>>> round(ccc(ref, est), 6), round(rmse(ref, est), 6)
(0.785714, 0.866025)
>>> scores = evaluate_static(np.c_[ref, -ref], np.c_[est, -est])
>>> list(scores), round(scores["valence_r2"], 6)
(['valence_r2', 'valence_rmse', 'arousal_r2', 'arousal_rmse'], 0.4)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    pass

__all__ = [
    "validate",
    "ccc",
    "pcc",
    "rmse",
    "mae",
    "r2",
    "accuracy",
    "per_song",
    "evaluate_dynamic",
    "evaluate_static",
    "evaluate_classes",
    "multilabel_scores",
    "per_tag_scores",
]

DIMENSIONS = ("valence", "arousal")  #: column order of every (n, 2) V-A array


# ----------------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------------


def _first_bad_index(x: np.ndarray) -> tuple[int, ...]:
    idx = np.argwhere(~np.isfinite(x))[0]
    return tuple(int(i) for i in idx)


def _as_array(x, name: str, *, numeric: bool) -> np.ndarray:
    if numeric:
        try:
            return np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} is not numeric ({exc})") from None
    return np.asarray(x)


def _check_finite(x: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(x)):
        bad = _first_bad_index(x)
        where = bad[0] if len(bad) == 1 else bad
        raise ValueError(f"{name} contains NaN or inf (first at index {where}: {x[bad]})")


def validate(reference, estimate, *, numeric: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Check that a reference and an estimate are comparable 1-D sequences.

    Parameters
    ----------
    reference, estimate : array-like [shape=(n,)]
        Ground truth and prediction.
    numeric : bool
        If True (regression metrics), both are converted to float64 and must be finite. If False
        (class labels), any dtype is accepted and finiteness is checked only for float arrays.

    Returns
    -------
    reference, estimate : np.ndarray [shape=(n,)]
        The inputs as arrays (float64 when ``numeric``).

    Raises
    ------
    ValueError
        If either input is not 1-D, is empty, contains NaN or inf, is not numeric, or the two
        shapes differ.
    """
    ref = _as_array(reference, "reference", numeric=numeric)
    est = _as_array(estimate, "estimate", numeric=numeric)
    for name, x in (("reference", ref), ("estimate", est)):
        if x.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {x.shape}")
    if ref.shape != est.shape:
        raise ValueError(f"reference and estimate must have the same shape, got {ref.shape} and {est.shape}")
    if ref.size == 0:
        raise ValueError("reference and estimate are empty")
    for name, x in (("reference", ref), ("estimate", est)):
        if numeric or np.issubdtype(x.dtype, np.floating):
            _check_finite(x, name)
    return ref, est


def _validate_2d(reference, estimate, *, n_cols: int | None = None, name: str = "") -> tuple:
    """Validate two (n, k) float arrays of equal shape; ``name`` prefixes messages (e.g. ``"song 3: "``)."""
    ref = _as_array(reference, f"{name}reference", numeric=True)
    est = _as_array(estimate, f"{name}estimate", numeric=True)
    for what, x in (("reference", ref), ("estimate", est)):
        if x.ndim != 2 or (n_cols is not None and x.shape[1] != n_cols):
            want = "(n, k)" if n_cols is None else f"(n, {n_cols})"
            raise ValueError(f"{name}{what} must have shape {want}, got {x.shape}")
    if ref.shape != est.shape:
        raise ValueError(
            f"{name}reference and estimate must have the same shape, got {ref.shape} and {est.shape}"
        )
    if ref.size == 0:
        raise ValueError(f"{name}reference and estimate are empty")
    for what, x in (("reference", ref), ("estimate", est)):
        _check_finite(x, f"{name}{what}")
    return ref, est


# ----------------------------------------------------------------------------------------------------
# Regression and classification metrics on 1-D arrays
# ----------------------------------------------------------------------------------------------------


def _moments(x: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean and centred values; a constant sequence gets its exact value as mean and zero deviations."""
    if np.ptp(x) == 0:
        return float(x[0]), np.zeros_like(x)
    m = float(np.mean(x))
    return m, x - m


def ccc(reference, estimate) -> float:
    """Lin's concordance correlation coefficient.

    ``ccc = 2 cov(r, e) / (var(r) + var(e) + (mean(r) - mean(e))^2)`` with population (``1/n``)
    variance and covariance.

    Parameters
    ----------
    reference, estimate : array-like [shape=(n,)]

    Returns
    -------
    float
        In [-1, 1]; 1 only for identical sequences.

    Notes
    -----
    Zero variance: if exactly one sequence is constant, or both are constant with different values,
    the formula applies (the covariance is 0, so CCC is 0). If both are constant and equal, the
    denominator is 0; the sequences are then identical and CCC is defined as ``1.0``.
    """
    ref, est = validate(reference, estimate)
    mr, rc = _moments(ref)
    me, ec = _moments(est)
    cov = float(np.mean(rc * ec))
    denom = float(np.mean(rc * rc)) + float(np.mean(ec * ec)) + (mr - me) ** 2
    if denom == 0.0:
        return 1.0
    return 2.0 * cov / denom


def pcc(reference, estimate) -> float:
    """Pearson correlation coefficient.

    Parameters
    ----------
    reference, estimate : array-like [shape=(n,)]

    Returns
    -------
    float
        In [-1, 1].

    Notes
    -----
    Zero variance: PCC is undefined when either sequence is constant (including two identical
    constant sequences). It is then returned as ``0.0`` (no correlation) without a warning, so that
    per-song averages stay finite.
    """
    ref, est = validate(reference, estimate)
    _, rc = _moments(ref)
    _, ec = _moments(est)
    norm = np.sqrt(np.sum(rc * rc)) * np.sqrt(np.sum(ec * ec))
    if norm == 0.0:
        return 0.0
    return float(np.clip(np.sum(rc * ec) / norm, -1.0, 1.0))


def rmse(reference, estimate) -> float:
    """Root mean squared error ``sqrt(mean((e - r)^2))``.

    Parameters
    ----------
    reference, estimate : array-like [shape=(n,)]
    """
    ref, est = validate(reference, estimate)
    return float(np.sqrt(np.mean((est - ref) ** 2)))


def mae(reference, estimate) -> float:
    """Mean absolute error ``mean(|e - r|)``.

    Parameters
    ----------
    reference, estimate : array-like [shape=(n,)]
    """
    ref, est = validate(reference, estimate)
    return float(np.mean(np.abs(est - ref)))


def r2(reference, estimate) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` (``sklearn.metrics.r2_score`` semantics).

    Parameters
    ----------
    reference, estimate : array-like [shape=(n,)]
        ``reference`` is the ground truth (``y_true``); the score is not symmetric.

    Returns
    -------
    float
        At most 1; negative when the estimate is worse than predicting the reference mean.

    Notes
    -----
    A constant reference (``SS_tot = 0``, including ``n = 1``) gives ``1.0`` for a perfect estimate
    and ``0.0`` otherwise, as scikit-learn's ``force_finite=True``.
    """
    ref, est = validate(reference, estimate)
    _, rc = _moments(ref)
    ss_tot = float(np.sum(rc * rc))
    ss_res = float(np.sum((ref - est) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


def accuracy(reference, estimate) -> float:
    """Fraction of positions where the estimated class equals the reference class.

    Parameters
    ----------
    reference, estimate : array-like [shape=(n,)]
        Class labels of any dtype (ints, strings, ...).
    """
    ref, est = validate(reference, estimate, numeric=False)
    return float(np.mean(ref == est))


# ----------------------------------------------------------------------------------------------------
# Per-song averaging and the V-A evaluations
# ----------------------------------------------------------------------------------------------------


def per_song(metric: Callable[[np.ndarray, np.ndarray], float], references, estimates) -> float:
    """Compute ``metric`` on each song, then average across songs (DAMFF Sec. 4.2).

    Parameters
    ----------
    metric : callable
        ``metric(reference, estimate) -> float`` on 1-D arrays, e.g. :func:`ccc`.
    references, estimates : sequence of array-like [shape=(n_i,)]
        One curve per song; the lengths ``n_i`` may differ between songs but must match within one.

    Returns
    -------
    float
        The mean over songs. Songs whose score is NaN (possible only for a user-supplied metric; the
        metrics of this module are always finite) are left out of the mean; if every song is NaN
        the result is NaN.

    Raises
    ------
    ValueError
        If there are no songs, the two lists differ in length, or a song is malformed (the message
        starts with ``song i:``, the index in the lists).
    """
    references = list(references)
    estimates = list(estimates)
    if len(references) != len(estimates):
        raise ValueError(f"got {len(references)} reference songs but {len(estimates)} estimated songs")
    if not references:
        raise ValueError("no songs to evaluate")
    scores = np.empty(len(references))
    for i, (ref, est) in enumerate(zip(references, estimates)):
        try:
            ref, est = validate(ref, est)
        except ValueError as exc:
            raise ValueError(f"song {i}: {exc}") from None
        scores[i] = metric(ref, est)
    finite = scores[~np.isnan(scores)]
    return float(np.mean(finite)) if finite.size else float("nan")


def evaluate_dynamic(references, estimates) -> OrderedDict:
    """Dynamic V-A scores: CCC, PCC and RMSE per song then averaged across songs (DAMFF Sec. 4.2).

    Parameters
    ----------
    references, estimates : sequence of array-like [shape=(n_i, 2)]
        One 2 Hz curve per song, columns (valence, arousal).

    Returns
    -------
    OrderedDict
        ``valence_ccc, valence_pcc, valence_rmse, arousal_ccc, arousal_pcc, arousal_rmse``: per song, then
        averaged (the movement *within* songs: a curve at the right level that does not move scores about 0),
        then ``{dim}_pooled_ccc, {dim}_pooled_pcc``: over all steps of all songs at once (dominated by the
        differences *between* songs), and ``{dim}_static_pcc``: Pearson between the
        songs' mean values (the static level, across songs; NaN with fewer than three songs).
    """
    references = list(references)
    estimates = list(estimates)
    if len(references) != len(estimates):
        raise ValueError(f"got {len(references)} reference songs but {len(estimates)} estimated songs")
    if not references:
        raise ValueError("no songs to evaluate")
    pairs = [
        _validate_2d(r, e, n_cols=2, name=f"song {i}: ")
        for i, (r, e) in enumerate(zip(references, estimates))
    ]
    scores = OrderedDict()
    for j, dim in enumerate(DIMENSIONS):
        refs = [r[:, j] for r, _ in pairs]
        ests = [e[:, j] for _, e in pairs]
        for name, fn in (("ccc", ccc), ("pcc", pcc), ("rmse", rmse)):
            scores[f"{dim}_{name}"] = per_song(fn, refs, ests)
    for j, dim in enumerate(DIMENSIONS):
        ref_all = np.concatenate([r[:, j] for r, _ in pairs])
        est_all = np.concatenate([e[:, j] for _, e in pairs])
        scores[f"{dim}_pooled_ccc"] = ccc(ref_all, est_all)
        scores[f"{dim}_pooled_pcc"] = pcc(ref_all, est_all)
        scores[
            f"{dim}_static_pcc"
        ] = (  # a correlation of fewer than 3 points means nothing: NaN (null in JSON)
            pcc([r[:, j].mean() for r, _ in pairs], [e[:, j].mean() for _, e in pairs])
            if len(pairs) >= 3
            else float("nan")
        )
    return scores


def evaluate_static(reference, estimate) -> OrderedDict:
    """Static V-A scores over all clips: R² and RMSE (ADFF Sec. 3.2).

    Parameters
    ----------
    reference, estimate : array-like [shape=(n, 2)]
        One (valence, arousal) point per clip.

    Returns
    -------
    OrderedDict
        ``valence_r2, valence_rmse, arousal_r2, arousal_rmse``.
    """
    ref, est = _validate_2d(reference, estimate, n_cols=2)
    scores = OrderedDict()
    for j, dim in enumerate(DIMENSIONS):
        scores[f"{dim}_r2"] = r2(ref[:, j], est[:, j])
        scores[f"{dim}_rmse"] = rmse(ref[:, j], est[:, j])
    return scores


def evaluate_classes(y_true, y_pred) -> OrderedDict:
    """Classification score (ADFF's 2- and 4-class tasks).

    Parameters
    ----------
    y_true, y_pred : array-like [shape=(n,)]
        Class labels.

    Returns
    -------
    OrderedDict
        ``accuracy``.
    """
    return OrderedDict(accuracy=accuracy(y_true, y_pred))


# ----------------------------------------------------------------------------------------------------
# Multi-label tagging
# ----------------------------------------------------------------------------------------------------


def _validate_multilabel(y_true, y_score, threshold) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t, s = _validate_2d(y_true, y_score)
    t = t.astype(np.float64)
    if not np.all((t == 0) | (t == 1)):
        raise ValueError("y_true must contain only 0 and 1")
    k = t.shape[1]
    thr = _as_array(threshold, "threshold", numeric=True)
    if thr.ndim == 0:
        thr = np.full(k, float(thr))
    if thr.shape != (k,):
        raise ValueError(f"threshold must be a scalar or have shape ({k},), got {thr.shape}")
    _check_finite(thr, "threshold")
    return t.astype(int), s, thr


def _tag_names(tags: Sequence[str] | None, k: int) -> list[str]:
    if tags is None:
        return [f"tag{j}" for j in range(k)]
    tags = [str(t) for t in tags]
    if len(tags) != k:
        raise ValueError(f"got {len(tags)} tag names for {k} tags")
    return tags


def multilabel_scores(y_true, y_score, *, threshold: float | Sequence[float] = 0.5) -> OrderedDict:
    """Multi-label tagging scores (scikit-learn), micro- and macro-averaged.

    Parameters
    ----------
    y_true : array-like [shape=(n, k)]
        0/1 ground truth for ``n`` items and ``k`` tags.
    y_score : array-like [shape=(n, k)]
        Tag probabilities (or any scores increasing with confidence).
    threshold : float or array-like [shape=(k,)]
        A tag is predicted when ``y_score >= threshold`` (one value, or one per tag).

    Returns
    -------
    OrderedDict
        ``precision_micro, precision_macro, recall_micro, recall_macro, f1_micro, f1_macro,
        roc_auc_micro, roc_auc_macro, pr_auc_micro, pr_auc_macro, n_tags_auc, n_tags_skipped_auc``.

    Notes
    -----
    - Precision/recall/F1 use ``zero_division=0``: a tag with no predicted (or no true) positives
      scores 0 for precision (recall), and every tag counts in the macro mean.
    - ROC-AUC and PR-AUC (average precision) are undefined for a tag whose ``y_true`` column has a
      single class. Such tags are skipped in the macro means (``n_tags_skipped_auc`` counts them);
      the micro scores pool every (item, tag) pair of all tags, which is defined as long as the pool
      has both classes. A score with nothing to average is NaN.
    """
    from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

    t, s, thr = _validate_multilabel(y_true, y_score, threshold)
    pred = (s >= thr).astype(int)
    out = OrderedDict()
    prf = {
        avg: precision_recall_fscore_support(t, pred, average=avg, zero_division=0)[:3]
        for avg in ("micro", "macro")
    }
    for i, name in enumerate(("precision", "recall", "f1")):
        for avg in ("micro", "macro"):
            out[f"{name}_{avg}"] = float(prf[avg][i])

    keep = (t.min(axis=0) == 0) & (t.max(axis=0) == 1)
    pooled_ok = 0 < t.sum() < t.size
    for name, fn in (("roc_auc", roc_auc_score), ("pr_auc", average_precision_score)):
        out[f"{name}_micro"] = float(fn(t.ravel(), s.ravel())) if pooled_ok else float("nan")
        per_tag = [fn(t[:, j], s[:, j]) for j in np.flatnonzero(keep)]
        out[f"{name}_macro"] = float(np.mean(per_tag)) if per_tag else float("nan")
    out["n_tags_auc"] = int(keep.sum())
    out["n_tags_skipped_auc"] = int((~keep).sum())
    return out


def per_tag_scores(
    y_true, y_score, *, threshold: float | Sequence[float] = 0.5, tags: Sequence[str] | None = None
) -> OrderedDict:
    """Precision, recall, F1, ROC-AUC and average precision for each tag.

    Parameters
    ----------
    y_true, y_score, threshold
        As in :func:`multilabel_scores`.
    tags : sequence of str, optional
        Tag names (default ``tag0, tag1, ...``).

    Returns
    -------
    OrderedDict
        ``tag -> OrderedDict(precision, recall, f1, roc_auc, pr_auc, support)`` where ``support`` is
        the number of positive items; ``roc_auc`` and ``pr_auc`` are NaN for a tag whose ``y_true``
        column has a single class.
    """
    from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

    t, s, thr = _validate_multilabel(y_true, y_score, threshold)
    names = _tag_names(tags, t.shape[1])
    pred = (s >= thr).astype(int)
    p, r, f, _ = precision_recall_fscore_support(t, pred, average=None, zero_division=0)
    out = OrderedDict()
    for j, name in enumerate(names):
        two_classes = t[:, j].min() == 0 and t[:, j].max() == 1
        out[name] = OrderedDict(
            precision=float(p[j]),
            recall=float(r[j]),
            f1=float(f[j]),
            roc_auc=float(roc_auc_score(t[:, j], s[:, j])) if two_classes else float("nan"),
            pr_auc=float(average_precision_score(t[:, j], s[:, j])) if two_classes else float("nan"),
            support=int(t[:, j].sum()),
        )
    return out


# ----------------------------------------------------------------------------------------------------
# Torch losses (training)
# ----------------------------------------------------------------------------------------------------
