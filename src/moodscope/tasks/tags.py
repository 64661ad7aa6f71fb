"""The tag task: emotion tags per track (the spectrogram-CNN tagger), and the per-tag decision thresholds
(:func:`choose_thresholds`, F1-optimal on validation data, saved in the model file).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from torch.utils.data import Dataset

from ..config import FeatureConfig, SettingError, number, number_list, text_list
from ..metrics import multilabel_scores, per_tag_scores
from .base import TASKS, Item, Task, WindowExamples, crop_frames, logistic, run_windows
from .static import full_segments, segment_windows, silence_pad


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


@TASKS.register("tags")
class TagTask(Task):
    """Multi-label emotion tagging on ``seg_len_s`` segments (Liu et al. 2017; CAL500, CAL500exp).

    Song-level tags (CAL500): every consecutive ``seg_len_s`` segment of a song carries the song's tags.
    Segment-level tags (CAL500exp): each labelled segment is one example (cropped or padded to ``seg_len_s``).
    A track's probabilities are the mean of its windows' sigmoid outputs.
    """

    kind = "tags"
    option_settings = {
        "seg_len_s": number(0, 600, lo_open=True),
        "tag_names": text_list(max_len=10000),
        "thresholds": number_list(0, 1, max_len=10000, none=True),
    }

    def __init__(self, features: FeatureConfig, *, seg_len_s: float = 10.0, tag_names=(), thresholds=None):
        self.features = features
        self.seg_len_s = float(seg_len_s)
        self.fps = features.frames_per_second
        self.length = int(round(self.seg_len_s * self.fps))
        if self.length < 1:
            raise SettingError("seg_len_s", seg_len_s, f"shorter than one frame at {self.fps:g} frames/s")
        self.tag_names = list(tag_names)
        self.thresholds = None if thresholds is None else np.asarray(thresholds, dtype=np.float32)
        if self.thresholds is not None and self.tag_names and len(self.thresholds) != len(self.tag_names):
            raise SettingError(
                "thresholds",
                thresholds,
                f"{len(self.thresholds)} thresholds for {len(self.tag_names)} tag names",
            )

    def check_model(self, model) -> None:
        """The model must give one output per tag name and threshold, and take windows of ``seg_len_s``."""
        n_tags = getattr(model, "n_tags", None)
        if n_tags is not None:
            for key, values in (("tag_names", self.tag_names), ("thresholds", self.thresholds)):
                if values is not None and len(values) and len(values) != n_tags:
                    raise SettingError(key, list(values), f"{len(values)} for a model of {n_tags} tags")
        need = getattr(model, "min_frames", 1)
        if self.length < need:
            raise SettingError(
                "seg_len_s",
                self.seg_len_s,
                f"{self.length} frames; the model needs windows of at least {need}",
            )

    def info(self) -> dict:
        return {
            "kind": self.kind,
            "seg_len_s": self.seg_len_s,
            "tag_names": self.tag_names,
            "thresholds": None if self.thresholds is None else self.thresholds.tolist(),
        }

    def examples(self, items: list[Item], model, *, seed: int = 0) -> Dataset:
        entries = []
        for i, it in enumerate(items):
            if it.segments:
                for start_s, end_s, tags in it.segments:
                    mid = 0.5 * (start_s + end_s) * self.fps
                    entries.append((i, int(round(mid - self.length / 2)), tags, np.ones_like(tags)))
            elif it.tags is not None:
                for span in full_segments(it.n_frames, self.seg_len_s, fps=self.fps):
                    entries.append((i, int(span[0]), it.tags, np.ones_like(it.tags)))
        return WindowExamples(items, entries, self.length, silence_pad(model))

    def loss(self, pred, target, mask) -> dict:
        import torch.nn.functional as F

        return {"loss": F.binary_cross_entropy_with_logits(pred, target, weight=mask)}

    @classmethod
    def for_training(cls, features: FeatureConfig, options: dict | None, model_args: dict, tag_names=None):
        """The tags are the ones the dataset adapter read, unless the config's ``task`` section lists them."""
        opts = dict(options or {})
        opts.setdefault("tag_names", list(tag_names or []))
        return cls(features, **opts)

    @classmethod
    def model_args(cls, args: dict, tag_names=None) -> dict:
        """One output per tag the adapter read."""
        return {**args, "n_tags": len(tag_names)} if tag_names else dict(args)

    def has_labels(self, item: Item) -> bool:
        return item.tags is not None or bool(item.segments)

    def calibrate(self, val_items: list[Item], predict) -> None:
        """Per-tag thresholds maximising F1 on the validation tracks (0.5 where a tag has no positives); none
        when no validation track carries tags."""
        try:
            y, probs = self.gather(val_items, [predict(it) for it in val_items])
        except ValueError:
            self.thresholds = None
            return
        self.thresholds = np.asarray(choose_thresholds(y, probs), dtype=np.float32)

    def fold_extras(self, items: list[Item], preds: list) -> dict:
        """Precision, recall, F1, ROC-AUC, PR-AUC and support of each tag."""
        return {"per_tag": self.per_tag(items, preds)}

    def result_fields(self, out: np.ndarray, duration_s: float) -> dict:
        """Probability per tag, and the tags over their thresholds where the model file has thresholds."""
        names = self.tag_names or [f"tag{i}" for i in range(len(out))]
        fields = {"static": {"valence": float("nan"), "arousal": float("nan")}}
        fields["tags"] = {n: float(p) for n, p in zip(names, out)}
        if self.thresholds is not None:
            chosen = [n for n, p, t in zip(names, out, self.thresholds) if p >= t]
            fields["extra"] = {"tags_predicted": chosen}
        return fields

    def predict(self, model, feats: np.ndarray, *, device="cpu", batch_size: int = 16) -> np.ndarray:
        wins = segment_windows(feats, self.seg_len_s, self.fps, silence_pad(model))
        return logistic(run_windows(model, wins, device=device, batch_size=batch_size)).mean(0)

    def predict_item(self, model, item: Item, *, device="cpu"):
        """Track-level probabilities ``(n_tags,)``, or ``(n_segments, n_tags)`` for segment-labelled items."""
        if not item.segments:
            return self.predict(model, item.feats, device=device)
        pad = silence_pad(model)
        wins = []
        for start_s, end_s, _ in item.segments:
            mid = 0.5 * (start_s + end_s) * self.fps
            wins.append(crop_frames(item.feats, int(round(mid - self.length / 2)), self.length, pad))
        return logistic(run_windows(model, np.stack(wins), device=device))

    @staticmethod
    def gather(items: list[Item], preds: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Binary labels and probabilities ``(n, n_tags)`` over tracks (song-level tags) or labelled segments."""
        ys, ps = [], []
        for it, p in zip(items, preds):
            if it.segments:
                ys.extend(tags for _, _, tags in it.segments)
                ps.extend(np.atleast_2d(p))
            elif it.tags is not None:
                ys.append(it.tags)
                ps.append(p)
        if not ys:
            raise ValueError("no track carries tags to evaluate")
        return (np.stack(ys) >= 0.5).astype(int), np.stack(ps)

    def evaluate(self, items: list[Item], preds: list[np.ndarray]) -> OrderedDict:
        """Multi-label scores over tracks (song-level tags) or over labelled segments (segment-level tags)."""

        y, p = self.gather(items, preds)
        out = multilabel_scores(y, p, threshold=0.5 if self.thresholds is None else self.thresholds)
        q = np.clip(p, 1e-7, 1 - 1e-7)
        out["log_loss"] = float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))  # mean BCE per (item, tag)
        return out

    def per_tag(self, items: list[Item], preds: list[np.ndarray]) -> OrderedDict:
        """Precision, recall, F1, ROC-AUC, PR-AUC and support of each tag (:func:`metrics.per_tag_scores`)."""

        y, p = self.gather(items, preds)
        thr = 0.5 if self.thresholds is None else self.thresholds
        names = self.tag_names if len(self.tag_names) == y.shape[1] else None
        return per_tag_scores(y, p, threshold=thr, tags=names)

    # -- the classical reference: clip (or labelled segment) statistics, one-vs-rest logistic regression --
    def classical_examples(self, item: Item, ref):
        if item.segments:
            X = np.stack([ref.span_stats(item.feats, s, e) for s, e, _ in item.segments])
            Y = np.stack([tags for _, _, tags in item.segments])
        elif item.tags is not None:
            X, Y = ref.clip_stats(item.feats)[None], np.asarray(item.tags)[None]
        else:
            return None
        return X, (Y >= 0.5).astype(int)

    def classical_estimator(self, ref):
        return ref.tagger()

    def classical_predict(self, estimator, item: Item, ref) -> np.ndarray:
        if item.segments:
            return estimator.predict_proba(
                np.stack([ref.span_stats(item.feats, s, e) for s, e, _ in item.segments])
            )
        return estimator.predict_proba(ref.clip_stats(item.feats)[None])[0]

    @staticmethod
    def score(metrics: dict) -> float:
        """The early-stopping score: minus the validation log loss (mean binary cross-entropy).

        Not ROC-AUC: on the few validation songs of a fold, AUC reaches 1.0 within a few epochs and stays
        there, so early stopping would keep an under-trained early model (seen on the synthetic corpus: the
        best AUC at epoch 2-7 of 30). The log loss keeps moving while the probabilities sharpen.
        """
        return -float(metrics["log_loss"])
