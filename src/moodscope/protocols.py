"""Static-label protocols of ADFF (Huang et al., Interspeech 2022, §3.1-§3.2).

Everything here works on feature arrays ``(frames, n_mels)`` (100 frames/s at the default settings) and
static labels on the canonical [-1, 1] scale; nothing reads files.

Segmenting (§3.1)
-----------------
- *Simple dataset* (:func:`simple_crops`): one random crop of ``seg_len`` seconds per clip.
- *Full dataset* (:func:`full_segments`): consecutive ``seg_len`` segments in time order. A last segment
  shorter than ``seg_len / 2`` is dropped; otherwise it is extended towards the start of the clip (its start
  moves earlier, so it overlaps the previous segment) until it has the full length. The paper says the last
  segment is "extended forward"; extending past the end of the clip would need padding, so we read it as
  "its start moves forward in the sense of earlier in time". All segments of a clip share its static label.
- A clip shorter than ``seg_len`` gives one segment, padded at the end. The paper zero-pads the *audio*; in
  the log-Mel domain digital silence is ``10 log10(amin)`` = -100 dB (:data:`SILENCE_DB`, the value of
  :class:`moodscope.config.FeatureConfig` with ``amin=1e-10``), which is the default ``pad_value``. (With
  ``center=True`` framing the few frames at the junction differ slightly from features of padded audio.)

Tasks and labels (§3.3.4)
-------------------------
``task`` is one of :data:`TASKS`: ``"valence"`` / ``"arousal"`` (one regression output), ``"multitask"``
(two outputs, valence then arousal), ``"binary"`` (four logits, two per dimension: valence negative/positive,
arousal negative/positive; a softmax over each pair, cross-entropy per dimension) and ``"quadrant"`` (four logits,
softmax). Classes come from the sign of the labels (:func:`label_to_class`); a label of exactly 0 counts as
positive. Quadrants are numbered counter-clockwise from the first::

    0 = V+ A+ (happy)   1 = V- A+ (angry)   2 = V- A- (sad)   3 = V+ A- (calm)

Whole-track prediction (:func:`aggregate_track`)
------------------------------------------------
A track is cut like a full-dataset clip (:func:`full_segments`, hop = ``seg_len``), the model runs on every
window, and the track's static point is the mean of the windows' regression outputs; for classification the
windows' class probabilities (softmax over each dimension's pair of logits for ``"binary"``, over the four logits
for ``"quadrant"``) are averaged and the class is the argmax of the mean (:func:`decode_static`).

Training constants (§3.2)
-------------------------
:func:`adff_lr_milestones` returns the paper's optimiser settings (Adam, lr 1e-5, weight decay 1e-5, 200 epochs,
batch 32, step decay at epochs [20, 45, 80, 110, 140, 170]). The paper does not give the decay factor; we use
``gamma = 0.5`` (after the six steps the rate is 1e-5 / 64), since 0.1 would leave a useless 1e-11 at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "FPS",
    "QUADRANT_NAMES",
    "SEG_LENS_S",
    "SILENCE_DB",
    "Spans",
    "TASKS",
    "TrainingSchedule",
    "adff_lr_milestones",
    "aggregate_track",
    "crop_or_pad",
    "decode_static",
    "full_segments",
    "kfold_by_clip",
    "label_to_class",
    "n_outputs",
    "quadrant_of",
    "segment_track",
    "simple_crops",
]

FPS = 100.0  #: log-Mel frames per second at the default feature settings (hop 441 at 44.1 kHz)
SILENCE_DB = -100.0  #: log-Mel value of digital silence (10 log10(1e-10)); default padding value
SEG_LENS_S = (5, 10, 15, 20, 25, 30)  #: the paper's segment lengths in seconds (§3.1)

#: task name -> number of model outputs
TASKS: dict[str, int] = {"valence": 1, "arousal": 1, "multitask": 2, "binary": 4, "quadrant": 4}
QUADRANT_NAMES = ("happy", "angry", "sad", "calm")  #: V+A+, V-A+, V-A-, V+A-


def n_outputs(task: str) -> int:
    """Number of model outputs for ``task`` (see :data:`TASKS`); unknown tasks raise ``ValueError``."""
    _check_task(task)
    return TASKS[task]


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")


def _seg_frames(seg_len_s: float, fps: float) -> int:
    if not seg_len_s > 0:
        raise ValueError(f"seg_len_s must be positive, got {seg_len_s}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    n = int(round(seg_len_s * fps))
    if n < 1:
        raise ValueError(f"seg_len_s={seg_len_s} is shorter than one frame at {fps} frames/s")
    return n


def _check_n_frames(n_frames: int) -> int:
    n_frames = int(n_frames)
    if n_frames < 1:
        raise ValueError(f"a clip needs at least one feature frame, got n_frames={n_frames}")
    return n_frames


# --------------------------------------------------------------------------------------------------------------
# Segmenting
# --------------------------------------------------------------------------------------------------------------


def simple_crops(
    n_frames: int, seg_len_s: float, rng: np.random.Generator, *, fps: float = FPS
) -> list[tuple[int, int]]:
    """One random ``seg_len`` crop of a clip (the paper's *simple dataset*, §3.1).

    Parameters
    ----------
    n_frames : int > 0
        Number of feature frames of the clip.
    seg_len_s : float > 0
        Crop length in seconds.
    rng : np.random.Generator
        Source of the crop start (uniform over every start that keeps the crop inside the clip).
    fps : float
        Feature frames per second.

    Returns
    -------
    spans : list of one ``(start, end)`` frame span, ``end - start == round(seg_len_s * fps)``
        For a clip shorter than ``seg_len`` the span is ``(0, seg_frames)`` and reaches past the clip's end;
        :func:`crop_or_pad` pads it.

    Examples
    --------
    >>> simple_crops(4700, 10, np.random.default_rng(0))  # doctest: +SKIP
    [(3997, 4997)]
    """
    n_frames = _check_n_frames(n_frames)
    length = _seg_frames(seg_len_s, fps)
    if n_frames <= length:
        return [(0, length)]
    start = int(rng.integers(0, n_frames - length + 1))
    return [(start, start + length)]


class Spans(list):
    """A list of ``(start, end)`` frame spans with the padding the spans need (``pad`` frames, at the end)."""

    pad: int = 0

    def __init__(self, spans=(), pad: int = 0):
        super().__init__(spans)
        self.pad = int(pad)


def full_segments(n_frames: int, seg_len_s: float, *, fps: float = FPS) -> Spans:
    """Consecutive ``seg_len`` segments of a clip (the paper's *full dataset*, §3.1).

    Segments ``[i L, (i + 1) L)`` for every whole ``L = round(seg_len_s * fps)`` frames; a remainder shorter
    than ``L / 2`` is dropped, a remainder of at least ``L / 2`` becomes the segment ``[n - L, n)`` (extended
    backwards to full length, overlapping the previous one). A clip shorter than ``L`` gives the one span
    ``(0, L)``, which reaches ``pad = L - n_frames`` frames past the clip's end (:func:`crop_or_pad` pads it).

    Parameters
    ----------
    n_frames : int > 0
    seg_len_s : float > 0
    fps : float

    Returns
    -------
    spans : :class:`Spans`
        A list of ``(start, end)`` frame spans, each ``L`` frames long, with attribute ``pad`` (frames of
        padding the single segment of a short clip needs; 0 otherwise).

    Examples
    --------
    >>> full_segments(4700, 10)  # 47 s clip, 10 s segments: the last one starts at 37 s
    [(0, 1000), (1000, 2000), (2000, 3000), (3000, 4000), (3700, 4700)]
    >>> full_segments(4200, 10)[-1]  # 42 s: the last 2 s are dropped
    (3000, 4000)
    >>> s = full_segments(300, 10)  # 3 s: one segment padded by 7 s
    >>> s, s.pad
    ([(0, 1000)], 700)
    """
    n_frames = _check_n_frames(n_frames)
    length = _seg_frames(seg_len_s, fps)
    if n_frames < length:
        return Spans([(0, length)], pad=length - n_frames)
    n_whole, rest = divmod(n_frames, length)
    spans = [(i * length, (i + 1) * length) for i in range(n_whole)]
    if rest > 0 and 2 * rest >= length:  # "less than seg_len / 2 -> dropped"
        spans.append((n_frames - length, n_frames))
    return Spans(spans, pad=0)


def crop_or_pad(feats: np.ndarray, start: int, length: int, *, pad_value: float = SILENCE_DB) -> np.ndarray:
    """Frames ``[start, start + length)`` of ``feats``, padded at the end with ``pad_value`` where the clip ends.

    Parameters
    ----------
    feats : np.ndarray [shape=(frames, n_mels)]
    start : int, 0 <= start < frames
    length : int > 0
    pad_value : float
        Value of padded frames (default: log-Mel of digital silence, -100 dB).

    Returns
    -------
    crop : np.ndarray [shape=(length, n_mels)], same dtype as ``feats``
    """
    feats = np.asarray(feats)
    if feats.ndim != 2:
        raise ValueError(f"features must have shape (frames, n_mels), got {feats.shape}")
    n = feats.shape[0]
    if n < 1:
        raise ValueError("features have no frames")
    if length < 1:
        raise ValueError(f"crop length must be positive, got {length}")
    if not 0 <= start < n:
        raise ValueError(f"crop start {start} is outside the clip's {n} frames")
    crop = feats[start : start + length]
    if crop.shape[0] == length:
        return crop.copy()
    out = np.full((length, feats.shape[1]), pad_value, dtype=feats.dtype)
    out[: crop.shape[0]] = crop
    return out


def segment_track(
    feats: np.ndarray, seg_len_s: float, *, fps: float = FPS, pad_value: float = SILENCE_DB
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Cut a whole clip or track into its full-dataset segments (:func:`full_segments`), padded if short.

    Returns
    -------
    windows : np.ndarray [shape=(n_windows, seg_frames, n_mels)]
    spans : :class:`Spans`, one ``(start, end)`` per window
    """
    feats = np.asarray(feats)
    if feats.ndim != 2:
        raise ValueError(f"features must have shape (frames, n_mels), got {feats.shape}")
    spans = full_segments(feats.shape[0], seg_len_s, fps=fps)
    length = spans[0][1] - spans[0][0]
    windows = np.stack([crop_or_pad(feats, s, length, pad_value=pad_value) for s, _ in spans])
    return windows, spans  # (n_windows, seg_frames, n_mels)


# --------------------------------------------------------------------------------------------------------------
# Cross-validation
# --------------------------------------------------------------------------------------------------------------


def kfold_by_clip(ids: Sequence[Any], *, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """K-fold cross-validation where the folds split *clips*, not items (§3.2).

    Items (e.g. the full-dataset segments) that share a clip id always land on the same side of a split, so no
    clip is both trained and tested on. The unique clip ids are shuffled with ``seed`` and split into ``k``
    near-equal groups (scikit-learn's ``KFold``); each item follows its clip.

    Parameters
    ----------
    ids : sequence [shape=(n_items,)]
        Clip id of every item (any hashable, sortable values: str or int).
    k : int >= 2
    seed : int

    Returns
    -------
    folds : list of ``k`` pairs ``(train_idx, test_idx)`` of sorted int arrays into ``ids``
        The test sets are disjoint and together cover every item once.
    """
    from sklearn.model_selection import KFold

    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.size == 0:
        raise ValueError(f"ids must be a non-empty 1-D sequence, got shape {ids.shape}")
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    clips, inverse = np.unique(ids, return_inverse=True)
    if clips.size < k:
        raise ValueError(f"{clips.size} distinct clips cannot be split into {k} folds")
    folds = []
    for _, test_clips in KFold(n_splits=k, shuffle=True, random_state=seed).split(clips):
        test_mask = np.isin(inverse, test_clips)
        folds.append((np.flatnonzero(~test_mask), np.flatnonzero(test_mask)))
    return folds


# --------------------------------------------------------------------------------------------------------------
# Labels and tasks
# --------------------------------------------------------------------------------------------------------------


def quadrant_of(valence, arousal) -> np.ndarray:
    """Quadrant index of V-A points: 0 = V+A+, 1 = V-A+, 2 = V-A-, 3 = V+A- (0 counts as positive).

    Parameters
    ----------
    valence, arousal : float or np.ndarray [shape=(n,)]

    Returns
    -------
    quadrant : np.ndarray [shape=(n,)] of int64 (0-d for scalar input)
    """
    v = np.asarray(valence, dtype=np.float64)
    a = np.asarray(arousal, dtype=np.float64)
    if v.shape != a.shape:
        raise ValueError(f"valence and arousal shapes differ: {v.shape} vs {a.shape}")
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(a))):
        raise ValueError("valence/arousal contain NaN or inf")
    vp, ap = v >= 0, a >= 0
    return np.where(ap, np.where(vp, 0, 1), np.where(vp, 3, 2)).astype(np.int64)


def label_to_class(valence, arousal, task: str) -> np.ndarray:
    """Class targets from static V-A labels by sign (§3.3.4); a label of exactly 0 is positive.

    Parameters
    ----------
    valence, arousal : float or np.ndarray [shape=(n,)]
        Labels on the [-1, 1] scale.
    task : {"binary", "quadrant"}

    Returns
    -------
    classes : np.ndarray of int64
        ``"binary"``: shape ``(n, 2)``, columns (valence, arousal), 1 = positive, 0 = negative.
        ``"quadrant"``: shape ``(n,)``, 0 = V+A+ (happy), 1 = V-A+ (angry), 2 = V-A- (sad), 3 = V+A- (calm).

    Examples
    --------
    >>> label_to_class([0.5, -0.2, 0.0], [0.1, 0.3, -0.4], "quadrant")
    array([0, 1, 3])
    >>> label_to_class([0.5, -0.2], [0.1, 0.0], "binary")
    array([[1, 1],
           [0, 1]])
    """
    _check_task(task)
    q = quadrant_of(valence, arousal)
    if task == "quadrant":
        return q
    if task == "binary":
        v = np.asarray(valence, dtype=np.float64)
        a = np.asarray(arousal, dtype=np.float64)
        return np.stack([v >= 0, a >= 0], axis=-1).astype(np.int64)
    raise ValueError(f"task {task!r} is a regression task; label_to_class is for 'binary' and 'quadrant'")


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def aggregate_track(window_outputs, task: str) -> np.ndarray:
    """A whole track's static output from the model outputs of its ``seg_len`` windows.

    The windows are the track's full-dataset segments (:func:`segment_track`: consecutive, hop = ``seg_len``,
    last one extended backwards or dropped). Regression outputs are averaged over windows. For classification
    the windows' class probabilities are averaged: a softmax over each dimension's pair of logits for
    ``"binary"``, over the four logits for ``"quadrant"``. :func:`decode_static` turns the result into classes
    (argmax of the mean probabilities) and a quadrant.

    Parameters
    ----------
    window_outputs : array-like [shape=(n_windows, n_outputs)]
        Raw model outputs (regression values or logits), one row per window.
    task : str
        One of :data:`TASKS`.

    Returns
    -------
    track : np.ndarray [shape=(n_outputs,)], float64
        Mean regression outputs (``"multitask"``: valence, arousal), or mean probabilities: ``"binary"`` gives
        (P(V-), P(V+), P(A-), P(A+)), ``"quadrant"`` the four quadrant probabilities.

    Examples
    --------
    >>> aggregate_track([[0.2, 0.5], [0.4, -0.1]], "multitask")
    array([0.3, 0.2])
    """
    _check_task(task)
    out = np.asarray(window_outputs, dtype=np.float64)
    if out.ndim == 1:
        out = out[None]
    if out.ndim != 2 or out.shape[0] == 0 or out.shape[1] != TASKS[task]:
        raise ValueError(
            f"task {task!r} expects window outputs of shape (n_windows, {TASKS[task]}), got {out.shape}"
        )
    if not np.all(np.isfinite(out)):
        raise ValueError("window outputs contain NaN or inf")
    if task == "binary":
        out = np.concatenate([_softmax(out[:, :2]), _softmax(out[:, 2:])], axis=1)  # (n_windows, 4)
    elif task == "quadrant":
        out = _softmax(out)  # (n_windows, 4)
    return out.mean(axis=0)


def decode_static(track_output, task: str) -> dict[str, Any]:
    """Named values of an aggregated track output (:func:`aggregate_track`).

    Returns
    -------
    result : dict
        ``"valence"`` and/or ``"arousal"`` (float) for the regression tasks that predict them; ``"classes"``
        (``{"valence": 0/1, "arousal": 0/1}``, 1 = positive) for ``"binary"``; ``"probs"`` (list of float) for the
        classification tasks; ``"quadrant"`` (int, see :func:`label_to_class`) or ``None`` for the single-dimension
        regression tasks.

    Examples
    --------
    >>> decode_static([0.3, -0.2], "multitask")
    {'quadrant': 3, 'valence': 0.3, 'arousal': -0.2}
    """
    _check_task(task)
    p = np.asarray(track_output, dtype=np.float64).reshape(-1)
    if p.shape != (TASKS[task],):
        raise ValueError(f"task {task!r} expects a track output of shape ({TASKS[task]},), got {p.shape}")
    res: dict[str, Any] = {"quadrant": None}
    if task in ("valence", "arousal"):
        res[task] = float(p[0])
    elif task == "multitask":
        res.update(quadrant=int(quadrant_of(p[0], p[1])), valence=float(p[0]), arousal=float(p[1]))
    elif task == "binary":
        v, a = int(p[1] >= p[0]), int(p[3] >= p[2])  # argmax per dimension; a 0.5/0.5 tie is positive
        q = {(1, 1): 0, (0, 1): 1, (0, 0): 2, (1, 0): 3}[(v, a)]
        res.update(quadrant=q, classes={"valence": v, "arousal": a}, probs=[float(x) for x in p])
    else:
        res.update(quadrant=int(np.argmax(p)), probs=[float(x) for x in p])
    return res


# --------------------------------------------------------------------------------------------------------------
# Training constants
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingSchedule:
    """Optimiser settings of ADFF (§3.2). ``gamma`` is our choice (the paper gives none)."""

    lr: float = 1e-5
    weight_decay: float = 1e-5
    epochs: int = 200
    batch_size: int = 32
    milestones: tuple[int, ...] = field(default=(20, 45, 80, 110, 140, 170))
    gamma: float = 0.5

    def lr_at(self, epoch: int) -> float:
        """Learning rate during (0-based) ``epoch`` under the step decay."""
        return self.lr * self.gamma ** sum(epoch >= m for m in self.milestones)

    def make(self, params):
        """``(torch.optim.Adam, torch.optim.lr_scheduler.MultiStepLR)`` for ``params`` (step once per epoch)."""
        import torch

        opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(self.milestones), gamma=self.gamma)
        return opt, sched


def adff_lr_milestones() -> TrainingSchedule:
    """The paper's training constants: Adam, lr 1e-5, weight decay 1e-5, 200 epochs, batch 32, step decay at
    epochs [20, 45, 80, 110, 140, 170] with factor ``gamma = 0.5`` (our choice)."""
    return TrainingSchedule()
