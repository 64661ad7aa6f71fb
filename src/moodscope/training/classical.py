"""Classical reference: clip-level log-Mel/MFCC statistics with linear models (scikit-learn).

The CNN tagger paper claims to beat hand-crafted features; this module is the hand-crafted side of that
comparison, so the claim is measured under the same splits and metrics:

- :func:`clip_statistics`: one fixed-length vector per clip from its log-Mel spectrogram;
- :class:`ClassicalTagger`: standardisation + one-vs-rest logistic regression (multi-label tags);
- :class:`ClassicalRegressor`: standardisation + ridge regression (static valence/arousal).

Features (for the default 128-band log-Mel in dB, 104 values per clip, in this order):

1. mean over frames of the log-Mel pooled to ``n_bands`` = 32 bands (``n_mels / n_bands`` = 4 adjacent
   mel bands averaged in dB; ``np.array_split`` groups when not divisible) -- spectral envelope;
2. standard deviation over frames of the same 32 bands -- loudness/timbre dynamics per band;
3. mean over frames of ``n_mfcc`` = 20 MFCCs -- smooth spectral shape (timbre);
4. standard deviation over frames of the MFCCs.

The MFCCs are the orthonormal DCT-II (``scipy.fft.dct(type=2, norm="ortho")``) of each frame's dB log-Mel
over the mel axis, first ``n_mfcc`` coefficients -- numerically what ``librosa.feature.mfcc(S=logmel.T)``
computes, so they equal librosa's MFCCs for the same log-Mel. Statistics are population (``ddof=0``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from ..config import SEGMENT_S

if TYPE_CHECKING:  # scikit-learn is imported where it is used: ``moodscope predict`` never needs it
    from sklearn.pipeline import Pipeline

__all__ = ["ClassicalRegressor", "ClassicalTagger", "clip_statistics", "clip_statistics_batch"]


def clip_statistics(feats, *, n_bands: int = 32, n_mfcc: int = 20) -> np.ndarray:
    """Clip-level statistics of a log-Mel spectrogram.

    Parameters
    ----------
    feats : np.ndarray [shape=(frames, n_mels)]
        Log-Mel in dB (moodscope's feature layout).
    n_bands : int
        Number of pooled bands for the band mean/std (``<= n_mels``).
    n_mfcc : int
        Number of MFCCs (``<= n_mels``).

    Returns
    -------
    np.ndarray [shape=(2 * n_bands + 2 * n_mfcc,)], float64
        ``[band means, band stds, MFCC means, MFCC stds]``.

    Examples
    --------
    >>> x = np.zeros((10, 128)); x[:, :4] = 1.0
    >>> v = clip_statistics(x)
    >>> v.shape, v[:2].tolist(), float(v[32])  # band means, first band std
    ((104,), [1.0, 0.0], 0.0)
    """
    x = np.asarray(feats, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"clip_statistics: features must be 2-d (frames, n_mels), got shape {x.shape}")
    n_frames, n_mels = x.shape
    if n_frames < 1:
        raise ValueError("clip_statistics: features have no frames")
    if not np.all(np.isfinite(x)):
        raise ValueError("clip_statistics: features contain NaN or inf")
    if not 1 <= n_bands <= n_mels or not 1 <= n_mfcc <= n_mels:
        raise ValueError(f"clip_statistics: need 1 <= n_bands, n_mfcc <= n_mels={n_mels}")
    d = _frame_descriptors(x, n_bands, n_mfcc)  # (frames, n_bands + n_mfcc)
    mean, std = d.mean(0), d.std(0)
    return np.concatenate([mean[:n_bands], std[:n_bands], mean[n_bands:], std[n_bands:]])


def clip_statistics_batch(clips: Iterable, **kwargs) -> np.ndarray:
    """:func:`clip_statistics` of each ``(frames, n_mels)`` array, stacked to ``(n_clips, n_features)``."""
    rows = [clip_statistics(c, **kwargs) for c in clips]
    if not rows:
        raise ValueError("clip_statistics_batch: no clips")
    return np.stack(rows)


def _check_x(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{name}: features must be 2-d (n_clips, n_features), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: features contain NaN or inf")
    return x


class ClassicalTagger:
    """Multi-label tagger: ``StandardScaler`` -> one-vs-rest ``LogisticRegression`` per tag.

    Parameters
    ----------
    C : float
        Inverse L2 regularisation strength of each logistic regression.
    class_weight : {None, "balanced"}
        ``"balanced"`` re-weights each tag's rare positives (CAL500 tags are sparse).
    max_iter : int
    random_state : int

    Notes
    -----
    A tag that is constant in the training data (e.g. never positive in a fold) gets a constant
    probability, its training frequency (0 or 1), instead of failing. Inputs are
    :func:`clip_statistics` vectors ``(n_clips, n_features)``; labels are binary ``(n_clips, n_tags)``.
    """

    def __init__(
        self, *, C: float = 1.0, class_weight: str | None = None, max_iter: int = 2000, random_state: int = 0
    ):
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.random_state = random_state
        self.pipeline_: Pipeline | None = None
        self.constant_: dict[int, float] = {}
        self.n_tags_: int = 0

    def fit(self, X, Y) -> ClassicalTagger:
        """Fit on features ``X`` (n_clips, n_features) and binary labels ``Y`` (n_clips, n_tags)."""
        X = _check_x(X, "ClassicalTagger.fit")
        Y = np.asarray(Y)
        if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
            raise ValueError(
                f"ClassicalTagger.fit: labels must be (n_clips={X.shape[0]}, n_tags), got {Y.shape}"
            )
        if not np.all((Y == 0) | (Y == 1)):
            raise ValueError("ClassicalTagger.fit: labels must be binary (0/1)")
        Y = Y.astype(int)
        self.n_tags_ = Y.shape[1]
        col_mean = Y.mean(axis=0)
        self.constant_ = {j: float(col_mean[j]) for j in range(self.n_tags_) if col_mean[j] in (0.0, 1.0)}
        self._varying = [j for j in range(self.n_tags_) if j not in self.constant_]
        self.pipeline_ = None
        if self._varying:
            from sklearn.linear_model import LogisticRegression
            from sklearn.multiclass import OneVsRestClassifier
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            clf = LogisticRegression(
                C=self.C,
                class_weight=self.class_weight,
                max_iter=self.max_iter,
                random_state=self.random_state,
            )
            self.pipeline_ = make_pipeline(StandardScaler(), OneVsRestClassifier(clf))
            target = Y[:, self._varying]
            # one varying tag: fit it as a binary problem (a one-column indicator would be read as binary
            # anyway, with two probability columns); several: the multi-label indicator matrix
            self.pipeline_.fit(X, target[:, 0] if len(self._varying) == 1 else target)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Tag probabilities, shape ``(n_clips, n_tags)``."""
        if not self.n_tags_:
            raise RuntimeError("ClassicalTagger is not fitted")
        X = _check_x(X, "ClassicalTagger.predict_proba")
        out = np.empty((X.shape[0], self.n_tags_))
        for j, v in self.constant_.items():
            out[:, j] = v
        if self.pipeline_ is not None:
            p = self.pipeline_.predict_proba(X)  # (n, n_varying), or (n, 2) for a single binary tag
            out[:, self._varying] = p[:, 1:] if len(self._varying) == 1 else p
        return out

    def predict(self, X, thresholds=0.5) -> np.ndarray:
        """Binary tags ``predict_proba(X) >= thresholds`` (scalar or one per tag)."""
        return self.predict_proba(X) >= np.asarray(thresholds, dtype=np.float64)


class ClassicalRegressor:
    """Static valence/arousal regression: ``StandardScaler`` -> ``Ridge`` (multi-output).

    Parameters
    ----------
    alpha : float
        L2 regularisation strength.
    clip : bool
        Clip predictions to the canonical [-1, 1] range.

    Inputs are :func:`clip_statistics` vectors ``(n_clips, n_features)``; targets ``(n_clips, n_out)``
    (``(valence, arousal)`` for the usual multi-task setting) or ``(n_clips,)`` for one dimension.
    """

    def __init__(self, *, alpha: float = 1.0, clip: bool = True):
        self.alpha = alpha
        self.clip = clip
        self.pipeline_: Pipeline | None = None
        self._1d = False

    def fit(self, X, y) -> ClassicalRegressor:
        """Fit on features ``X`` (n_clips, n_features) and targets ``y`` (n_clips, n_out) or (n_clips,)."""
        X = _check_x(X, "ClassicalRegressor.fit")
        y = np.asarray(y, dtype=np.float64)
        if y.shape[0] != X.shape[0] or y.ndim not in (1, 2) or not np.all(np.isfinite(y)):
            raise ValueError(
                f"ClassicalRegressor.fit: targets must be finite, ({X.shape[0]}[, n_out]), got {y.shape}"
            )
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self._1d = y.ndim == 1
        self.pipeline_ = make_pipeline(StandardScaler(), Ridge(alpha=self.alpha))
        self.pipeline_.fit(X, y)
        return self

    def predict(self, X) -> np.ndarray:
        """Predictions, shape ``(n_clips, n_out)`` (or ``(n_clips,)`` if fitted on 1-d targets)."""
        if self.pipeline_ is None:
            raise RuntimeError("ClassicalRegressor is not fitted")
        p = self.pipeline_.predict(_check_x(X, "ClassicalRegressor.predict"))
        return np.clip(p, -1.0, 1.0) if self.clip else p


# ------------------------------------------------------------------------------------------------------------
# the classical reference as a "model" of an experiment (``model.name: classical``)
# ------------------------------------------------------------------------------------------------------------
NAME = "classical"


def _frame_descriptors(x: np.ndarray, n_bands: int, n_mfcc: int) -> np.ndarray:
    """Per-frame pooled bands and MFCCs, ``(frames, n_bands + n_mfcc)`` (as in :func:`clip_statistics`)."""
    import scipy.fft

    bands = np.stack([g.mean(axis=1) for g in np.array_split(x, n_bands, axis=1)], axis=1)
    mfcc = scipy.fft.dct(x, type=2, norm="ortho", axis=1)[:, :n_mfcc]
    return np.concatenate([bands, mfcc], axis=1)


def segment_statistics(
    feats, frames_per_segment: int, *, context_segments: int = 10, n_bands: int = 32, n_mfcc: int = 20
) -> np.ndarray:
    """:func:`clip_statistics` of a context window centred on each 0.5 s segment.

    Segment ``i`` covers frames ``[i * fps_seg, (i + 1) * fps_seg)``; its vector is the band/MFCC mean and
    standard deviation over segments ``[i - context_segments // 2, i - context_segments // 2 + context_segments)``,
    cut at the track's ends (fewer frames there, never padding). Computed from per-segment first and second
    moments with cumulative sums, so the cost does not grow with the context. With ``context_segments``
    covering the whole track, every row equals ``clip_statistics`` of the whole track's segments.

    Returns
    -------
    np.ndarray [shape=(n_segments, 2 * n_bands + 2 * n_mfcc)], ``n_segments = frames // frames_per_segment``
    """
    x = np.asarray(feats, dtype=np.float64)
    if x.ndim != 2 or not np.all(np.isfinite(x)):
        raise ValueError(f"segment_statistics: features must be finite (frames, n_mels), got shape {x.shape}")
    fps = int(frames_per_segment)
    n_seg = x.shape[0] // fps
    if n_seg < 1:
        raise ValueError(f"segment_statistics: {x.shape[0]} frames are shorter than one segment ({fps})")
    if context_segments < 1:
        raise ValueError("segment_statistics: context_segments must be >= 1")
    d = _frame_descriptors(x[: n_seg * fps], n_bands, n_mfcc).reshape(n_seg, fps, -1)
    c1 = np.concatenate([np.zeros((1, d.shape[2])), np.cumsum(d.sum(1), axis=0)])
    c2 = np.concatenate([np.zeros((1, d.shape[2])), np.cumsum((d * d).sum(1), axis=0)])
    lo = np.clip(np.arange(n_seg) - context_segments // 2, 0, n_seg)
    hi = np.clip(lo + context_segments, 0, n_seg)
    lo = np.clip(hi - context_segments, 0, n_seg)  # near the end: keep the full context inside the track
    n = ((hi - lo) * fps)[:, None]
    mean = (c1[hi] - c1[lo]) / n
    std = np.sqrt(np.maximum((c2[hi] - c2[lo]) / n - mean**2, 0.0))
    return np.concatenate([mean[:, :n_bands], std[:, :n_bands], mean[:, n_bands:], std[:, n_bands:]], axis=1)


def _span(feats: np.ndarray, start_s: float, end_s: float, fps: float) -> np.ndarray:
    a = max(0, int(round(start_s * fps)))
    b = min(len(feats), max(a + 1, int(round(end_s * fps))))
    return feats[a:b] if b > a else feats[-1:]


class ClassicalReference:
    """The hand-crafted reference under an experiment's protocol, for any task.

    The task says what is fitted and predicted (its ``classical_*`` methods); this object holds the
    statistics and the estimators they use:

    - tags: :class:`ClassicalTagger` on :func:`clip_statistics` of each song (song-level tags) or of each
      labelled segment (segment-level tags); per-tag thresholds chosen on the validation tracks like the CNN's;
    - static: :class:`ClassicalRegressor` on :func:`clip_statistics` of the whole clip (regression heads),
      or a logistic regression per class dimension (:class:`ClassicalClassifier`, binary / quadrant heads);
    - dynamic: :class:`ClassicalRegressor` per 0.5 s segment on :func:`segment_statistics` over a
      ``context_s`` window (default 5 s) -- the shape of the MediaEval/DEAM baselines (frame-level
      descriptors, statistics per segment, a linear model).

    The features are the same log-Mel the deep models see; nothing is tuned on the test tracks.
    """

    def __init__(self, task, *, C: float = 1.0, alpha: float = 10.0, context_s: float = 5.0):
        self.task = task
        self.C, self.alpha, self.context_s = float(C), float(alpha), float(context_s)
        self.fps = task.features.frames_per_second
        self.model = None

    # -- statistics and estimators the tasks ask for ------------------------------------------------------
    def clip_stats(self, feats: np.ndarray) -> np.ndarray:
        return clip_statistics(feats)

    def span_stats(self, feats: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
        return clip_statistics(_span(feats, start_s, end_s, self.fps))

    def segment_stats(self, item) -> np.ndarray:
        ctx = max(1, int(round(self.context_s / SEGMENT_S)))
        return segment_statistics(item.feats, self.task.features.frames_per_segment, context_segments=ctx)

    def regressor(self) -> ClassicalRegressor:
        return ClassicalRegressor(alpha=self.alpha)

    def tagger(self) -> ClassicalTagger:
        return ClassicalTagger(C=self.C)

    def classifier(self, n_classes: int) -> ClassicalClassifier:
        return ClassicalClassifier(n_classes, C=self.C)

    # -- the fold's interface -------------------------------------------------------------------------------
    def fit(self, items) -> ClassicalReference:
        rows = [r for r in (self.task.classical_examples(it, self) for it in items) if r is not None]
        if not rows:
            raise ValueError(f"classical reference: no {self.task.kind} labels to fit")
        X = np.concatenate([x for x, _ in rows])
        Y = np.concatenate([y for _, y in rows])
        self.model = self.task.classical_estimator(self).fit(X, Y)
        return self

    def predict_item(self, it) -> np.ndarray:
        """The prediction in the shape the task's ``evaluate`` expects (as ``task.predict_item``)."""
        return self.task.classical_predict(self.model, it, self)


class ClassicalClassifier:
    """One standardised logistic regression per column of class ids; ``predict_proba`` concatenates each
    column's ``n_classes`` probabilities (zero for a class absent from the training data)."""

    def __init__(self, n_classes: int, *, C: float = 1.0):
        self.n_classes, self.C = int(n_classes), float(C)
        self.models = []

    def fit(self, X, Y) -> ClassicalClassifier:
        Y = np.asarray(Y).reshape(len(Y), -1)
        self.models = [_fit_classifier(np.asarray(X), Y[:, j], self.C) for j in range(Y.shape[1])]
        return self

    def predict_proba(self, X) -> np.ndarray:
        X = np.asarray(X)
        return np.stack(
            [np.concatenate([_class_proba(m, x[None], self.n_classes) for m in self.models]) for x in X]
        )


def _fit_classifier(X: np.ndarray, y: np.ndarray, C: float):
    """Standardised logistic regression on class ids; the class prior when training has one class only."""
    if len(np.unique(y)) < 2:
        from sklearn.dummy import DummyClassifier

        return DummyClassifier(strategy="prior").fit(X, y)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000)).fit(X, y)


def _class_proba(model, x: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities of classes ``0..n_classes-1`` (zero for a class absent from the training data)."""
    p = np.zeros(n_classes)
    p[model.classes_.astype(int)] = model.predict_proba(x)[0]
    return p
