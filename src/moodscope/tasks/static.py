"""The static task: one valence-arousal point (or class) per clip, and ADFF's protocol (Huang et al., Interspeech 2022, §3.1-§3.3).

:class:`StaticTask` trains and scores the ADFF heads; the functions below are the protocol itself.
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
``task`` is one of :data:`STATIC_HEADS`: ``"valence"`` / ``"arousal"`` (one regression output), ``"multitask"``
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
for ``"quadrant"``) are averaged; the quadrant is the argmax of the mean.

Training constants (§3.2): Adam, lr 1e-5, weight decay 1e-5, 200 epochs, batch 32, step decay at epochs
[20, 45, 80, 110, 140, 170]; they live in the ADFF configs (``configs/adff_*.yaml``). The paper does not give
the decay factor; we use ``gamma = 0.5`` (after the six steps the rate is 1e-5 / 64), since 0.1 would leave a
useless 1e-11 at the end.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from torch.utils.data import Dataset

from ..config import FeatureConfig, SettingError, choice, number
from ..emotion import quadrant_index
from ..metrics import evaluate_classes, evaluate_static, r2, rmse
from ..models.base import STATIC_HEADS, n_outputs
from .base import TASKS, Item, Task, WindowExamples, crop_frames, run_windows

FPS = 100.0  #: log-Mel frames per second at the default feature settings (hop 441 at 44.1 kHz)


SILENCE_DB = -100.0  #: log-Mel value of digital silence (10 log10(1e-10)); default padding value


SEG_LENS_S = (5, 10, 15, 20, 25, 30)  #: the paper's segment lengths in seconds (§3.1)


def _check_task(task: str) -> None:
    if task not in STATIC_HEADS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(STATIC_HEADS)}")


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
        the window is padded.

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
    ``(0, L)``, which reaches ``pad = L - n_frames`` frames past the clip's end (the window is padded).

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
    q = quadrant_index(valence, arousal)
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

    The windows are the track's full-dataset segments (:func:`full_segments`: consecutive, hop = ``seg_len``,
    last one extended backwards or dropped). Regression outputs are averaged over windows. For classification
    the windows' class probabilities are averaged: a softmax over each dimension's pair of logits for
    ``"binary"``, over the four logits for ``"quadrant"``; the argmax of the mean is the class.

    Parameters
    ----------
    window_outputs : array-like [shape=(n_windows, n_outputs)]
        Raw model outputs (regression values or logits), one row per window.
    task : str
        One of :data:`STATIC_HEADS`.

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
    if out.ndim != 2 or out.shape[0] == 0 or out.shape[1] != STATIC_HEADS[task]:
        raise ValueError(
            f"task {task!r} expects window outputs of shape (n_windows, {STATIC_HEADS[task]}), got {out.shape}"
        )
    if not np.all(np.isfinite(out)):
        raise ValueError("window outputs contain NaN or inf")
    if task == "binary":
        out = np.concatenate([_softmax(out[:, :2]), _softmax(out[:, 2:])], axis=1)  # (n_windows, 4)
    elif task == "quadrant":
        out = _softmax(out)  # (n_windows, 4)
    return out.mean(axis=0)


def silence_pad(model) -> float:
    """Padding for static and tag models: digital silence (zero audio) in dB, as ADFF §3.1 zero-pads the audio."""

    return SILENCE_DB


def segment_windows(feats: np.ndarray, seg_len_s: float, fps: float, pad) -> np.ndarray:
    """The consecutive ``seg_len_s`` windows of a track (:func:`moodscope.tasks.static.full_segments`), stacked
    as ``(n_windows, frames, n_bins)``."""

    length = int(round(seg_len_s * fps))
    spans = full_segments(feats.shape[0], seg_len_s, fps=fps)
    return np.stack([crop_frames(feats, int(s[0]), length, pad) for s in spans])


@TASKS.register("static")
class StaticTask(Task):
    """Clip-level V-A regression or classification (ADFF §2-§3).

    ``head`` is the ADFF model's ``task`` argument: ``valence``/``arousal`` (single-task regression),
    ``multitask`` (V and A), ``binary`` (2 classes per dimension by sign) or ``quadrant`` (4 classes).
    ``dataset`` is ``simple`` (one random ``seg_len_s`` crop per clip, drawn once with ``seed``) or ``full``
    (consecutive segments, ADFF §3.1).
    """

    kind = "static"
    option_settings = {
        "seg_len_s": number(0, 600, lo_open=True),
        "dataset": choice(("simple", "full")),
        "head": choice(STATIC_HEADS),
    }

    def __init__(
        self, features: FeatureConfig, *, seg_len_s: float = 20.0, dataset: str = "simple", head="multitask"
    ):
        if dataset not in ("simple", "full"):
            raise ValueError(f"static dataset must be 'simple' or 'full', not {dataset!r}")
        self.features = features
        self.seg_len_s = float(seg_len_s)
        self.dataset = dataset
        self.head = head
        self.fps = features.frames_per_second
        self.length = int(round(self.seg_len_s * self.fps))
        if self.length < 1:
            raise SettingError("seg_len_s", seg_len_s, f"shorter than one frame at {self.fps:g} frames/s")

    def check_model(self, model) -> None:
        """The model's head must give as many outputs as this task's ``head`` reads, and a window of
        ``seg_len_s`` must hold a frame for each of its ``seg_num`` parts (ADFF)."""
        model_head = getattr(model, "task", None)
        if model_head in STATIC_HEADS and n_outputs(model_head) != n_outputs(self.head):
            raise SettingError("head", self.head, f"the model's head is {model_head!r}")
        parts = getattr(model, "seg_num", 1)
        if self.length < parts:
            raise SettingError(
                "seg_len_s",
                self.seg_len_s,
                f"{self.length} frames, fewer than the model's {parts} parts (seg_num)",
            )

    @classmethod
    def for_training(cls, features: FeatureConfig, options: dict | None, model_args: dict, tag_names=None):
        """The head is the ADFF model's ``task`` argument unless the config's ``task`` section names one."""
        opts = dict(options or {})
        opts.setdefault("head", model_args.get("task", "multitask"))
        return cls(features, **opts)

    def has_labels(self, item: Item) -> bool:
        return item.static is not None

    def info(self) -> dict:
        return {"kind": self.kind, "seg_len_s": self.seg_len_s, "head": self.head}

    def result_fields(self, out: np.ndarray, duration_s: float) -> dict:
        """The static point of the head's track output; class probabilities map to expected positions: for
        ``binary`` ``P(+) - P(-)`` per dimension, for ``quadrant`` the probability-weighted quadrant centre
        (±0.5, ±0.5)."""
        out = np.asarray(out)
        nan = float("nan")
        if self.head == "multitask":
            v, a = float(out[0]), float(out[1])
        elif self.head == "valence":
            v, a = float(out[0]), nan
        elif self.head == "arousal":
            v, a = nan, float(out[0])
        elif self.head == "binary":
            v, a = float(out[1] - out[0]), float(out[3] - out[2])
        else:  # quadrant probabilities (0 happy, 1 angry, 2 sad, 3 calm)
            centres = np.array([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]])
            v, a = (float(x) for x in (out / max(out.sum(), 1e-9)) @ centres)
        return {"static": {"valence": v, "arousal": a}}

    def _target(self, static: np.ndarray):
        v, a = float(static[0]), float(static[1])
        if self.head == "valence":
            return np.array([v], np.float32)
        if self.head == "arousal":
            return np.array([a], np.float32)
        if self.head == "multitask":
            return np.array([v, a], np.float32)
        return np.atleast_1d(np.asarray(label_to_class(v, a, self.head), dtype=np.float32))

    def examples(self, items: list[Item], model, *, seed: int = 0) -> Dataset:
        rng = np.random.default_rng(seed)
        entries = []
        for i, it in enumerate(items):
            if it.static is None:
                continue
            if self.dataset == "simple":
                spans = simple_crops(it.n_frames, self.seg_len_s, rng, fps=self.fps)
            else:
                spans = full_segments(it.n_frames, self.seg_len_s, fps=self.fps)
            t = self._target(it.static)
            for span in spans:
                entries.append((i, int(span[0]), t, np.ones_like(t)))
        return WindowExamples(items, entries, self.length, silence_pad(model))

    def loss(self, pred, target, mask) -> dict:
        import torch.nn.functional as F

        if self.head in ("valence", "arousal", "multitask"):
            return {"loss": F.mse_loss(pred, target)}
        if self.head == "binary":
            # two logits per dimension: (valence neg/pos, arousal neg/pos); target (batch, 2) class ids
            lv = F.cross_entropy(pred[:, :2], target[:, 0].long())
            la = F.cross_entropy(pred[:, 2:], target[:, 1].long())
            return {"loss": lv + la, "loss_valence": lv, "loss_arousal": la}
        return {"loss": F.cross_entropy(pred, target[:, 0].long())}

    def raw_outputs(self, model, feats: np.ndarray, *, device="cpu", batch_size: int = 16) -> np.ndarray:
        """Model outputs ``(n_windows, n_out)`` for the consecutive ``seg_len_s`` windows of a track."""
        wins = segment_windows(feats, self.seg_len_s, self.fps, silence_pad(model))
        return run_windows(model, wins, device=device, batch_size=batch_size)

    def predict(self, model, feats: np.ndarray, *, device="cpu") -> np.ndarray:
        """A track's prediction: regression ``(n_out,)`` mean over windows, or class probabilities."""
        return np.asarray(aggregate_track(self.raw_outputs(model, feats, device=device), self.head))

    def evaluate(self, items: list[Item], preds: list[np.ndarray]) -> OrderedDict:
        ref = np.stack([it.static for it in items])
        if self.head == "multitask":
            return evaluate_static(ref, np.stack(preds))
        if self.head in ("valence", "arousal"):
            d = 0 if self.head == "valence" else 1
            est = np.array([p[0] for p in preds])
            return OrderedDict(
                [(f"{self.head}_r2", r2(ref[:, d], est)), (f"{self.head}_rmse", rmse(ref[:, d], est))]
            )
        y_true = np.stack([self._target(s) for s in ref])
        if self.head == "binary":
            est = np.stack([[np.argmax(p[:2]), np.argmax(p[2:])] for p in preds])
            out = OrderedDict()
            out["valence_accuracy"] = evaluate_classes(y_true[:, 0], est[:, 0])["accuracy"]
            out["arousal_accuracy"] = evaluate_classes(y_true[:, 1], est[:, 1])["accuracy"]
            return out
        est = np.array([np.argmax(p) for p in preds])
        return OrderedDict(quadrant_accuracy=evaluate_classes(y_true[:, 0], est)["accuracy"])

    # -- the classical reference: clip statistics, ridge regression or logistic regression per class -----
    def classical_examples(self, item: Item, ref):
        if item.static is None:
            return None
        return ref.clip_stats(item.feats)[None], self._target(item.static)[None]

    def classical_estimator(self, ref):
        if self.head in ("valence", "arousal", "multitask"):
            return ref.regressor()
        return ref.classifier(2 if self.head == "binary" else 4)

    def classical_predict(self, estimator, item: Item, ref) -> np.ndarray:
        x = ref.clip_stats(item.feats)[None]
        if self.head in ("valence", "arousal", "multitask"):
            return estimator.predict(x)[0]
        return estimator.predict_proba(x)[0]  # binary: two probabilities per dimension, as ADFF's binary head

    def score(self, metrics: dict) -> float:
        """Early-stopping score: mean R² (regression) or mean accuracy (classification)."""
        keys = [k for k in metrics if k.endswith("_r2")] or [k for k in metrics if k.endswith("accuracy")]
        return float(np.mean([metrics[k] for k in keys]))
