"""Learning tasks: what a model of each output kind is trained on, how it predicts a whole track, how it is scored.

A task joins the three model kinds of :mod:`moodscope.models.base` to the data:

- :class:`DynamicTask` (DAMFF and the Table 2 baselines): training examples are ``window_s`` windows of a
  track's features with the matching 2 Hz V-A labels (windows start every ``train_hop_s`` seconds, the last one
  aligned to the end of the labelled span; segments without a label are masked out of the loss). A whole track
  is predicted with the §4.4.1 sliding window (:func:`moodscope.inference.sliding_predict`) and scored with
  CCC / PCC / RMSE per song, then averaged across songs (DAMFF §4.2).
- :class:`StaticTask` (ADFF): examples are ``seg_len_s`` crops (ADFF §3.1 "simple" = one random crop per clip,
  "full" = consecutive segments), all with the clip's static label; a whole track is the mean of the outputs of
  its consecutive ``seg_len_s`` windows (:func:`moodscope.protocols.aggregate_track`); scored with R² / RMSE
  (regression) or accuracy (classification).
- :class:`TagTask` (emotion tagger): examples are ``seg_len_s`` crops with the track's (or the segment's) tags;
  a track's tag probabilities are the mean of its windows' sigmoid outputs; scored with multi-label P/R/F1/AUC.

Tracks reach a task as :class:`Item` records: features in memory (or memory-mapped from the feature cache) and
labels aligned to the 0.5 s grid.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from .config import SEGMENT_S, FeatureConfig
from .registry import Registry

TASKS: Registry[type] = Registry("task")


@dataclass
class Item:
    """One track ready for learning.

    Attributes
    ----------
    id : str
    feats : np.ndarray [shape=(frames, n_bins)]
        Log-Mel dB (or waveform) features of the whole track.
    dynamic : np.ndarray [shape=(n_segments, 2)] or None
        V-A per 0.5 s segment from the track start, NaN where unlabelled.
    static : np.ndarray [shape=(2,)] or None
        Static (valence, arousal).
    tags : np.ndarray [shape=(n_tags,)] or None
    segments : list of (start_s, end_s, tags (n_tags,)) for segment-level tags.
    """

    id: str
    feats: np.ndarray
    dynamic: np.ndarray | None = None
    static: np.ndarray | None = None
    tags: np.ndarray | None = None
    segments: list = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return int(self.feats.shape[0])


def labelled_for(kind: str, items: list[Item]) -> list[Item]:
    """The items carrying the labels a ``kind`` (``dynamic``/``static``/``tags``) task is scored on.

    A dataset may label tracks unevenly (static labels only, tags only, audio without any label); such tracks
    are kept out of validation and test scoring instead of breaking it.
    """
    if kind == "dynamic":
        return [it for it in items if it.dynamic is not None]
    if kind == "static":
        return [it for it in items if it.static is not None]
    return [it for it in items if it.tags is not None or it.segments]


def _pad_value(model) -> np.ndarray:
    """Padding frame for features: the model's input-normalisation mean, so padded frames normalise to zero."""
    return model.norm.mean.detach().cpu().numpy().astype(np.float32)


def _silence_pad(model) -> float:
    """Padding for static and tag models: digital silence (zero audio) in dB, as ADFF §3.1 zero-pads the audio."""
    from .protocols import SILENCE_DB

    return SILENCE_DB


def crop_frames(feats: np.ndarray, start: int, length: int, pad: np.ndarray | float) -> np.ndarray:
    """``feats[start:start+length]``, padded with ``pad`` frames where the span leaves the array."""
    n, d = feats.shape
    out = np.empty((length, d), dtype=np.float32)
    out[:] = pad
    lo, hi = max(start, 0), min(start + length, n)
    if hi > lo:
        out[lo - start : hi - start] = feats[lo:hi]
    return out


def segment_windows(feats: np.ndarray, seg_len_s: float, fps: float, pad) -> np.ndarray:
    """The consecutive ``seg_len_s`` windows of a track (:func:`moodscope.protocols.full_segments`), stacked
    as ``(n_windows, frames, n_bins)``."""
    from .protocols import full_segments

    length = int(round(seg_len_s * fps))
    spans = full_segments(feats.shape[0], seg_len_s, fps=fps)
    return np.stack([crop_frames(feats, int(s[0]), length, pad) for s in spans])


@torch.inference_mode()
def run_windows(model, wins: np.ndarray, *, device="cpu", batch_size: int = 16) -> np.ndarray:
    """Model outputs ``(n_windows, n_out)`` for windows ``(n_windows, frames, n_bins)``, in batches."""
    outs = []
    for b in range(0, len(wins), batch_size):
        x = torch.from_numpy(wins[b : b + batch_size])[:, None].to(device)  # (batch, 1, frames, n_bins)
        outs.append(model(x).float().cpu().numpy())
    return np.concatenate(outs)


class _Examples(Dataset):
    """A list of ``(item_index, start_frame, target, mask)`` tuples materialised lazily as tensors.

    ``reuse``: the task batches these windows with shared segments (:class:`_SharedSegmentBatches`).
    """

    def __init__(self, items, entries, length, pad, *, reuse: bool = False):
        self.items, self.entries, self.length, self.pad = items, entries, length, pad
        self.reuse = reuse

    def __len__(self):
        return len(self.entries)

    def __getitem__(self, i):
        idx, start, target, mask = self.entries[i]
        x = crop_frames(self.items[idx].feats, start, self.length, self.pad)
        return (
            torch.from_numpy(x)[None],  # (1, frames, n_bins)
            torch.as_tensor(target, dtype=torch.float32),
            torch.as_tensor(mask, dtype=torch.float32),
        )


class _TrackGroupedBatches(torch.utils.data.Sampler):
    """Batches of window indices grouped by track, for :class:`_SharedSegmentBatches`.

    Each epoch shuffles the tracks, lists each track's windows in random order, and cuts that list into
    batches of ``batch_size`` windows (the last partial batch is dropped, as in plain batching, when there is
    more than one batch). It runs in the main process, so the epoch count that seeds the shuffle advances
    even with loader workers.
    """

    def __init__(self, entries, batch_size: int, seed: int):
        self.batch_size, self.seed, self.epoch = int(batch_size), int(seed), 0
        self.n = len(entries)
        self.by_item: dict[int, list[int]] = {}
        for j, entry in enumerate(entries):
            self.by_item.setdefault(int(entry[0]), []).append(j)

    def __len__(self) -> int:
        return self.n // self.batch_size if self.n > self.batch_size else 1

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        order = []
        for idx in rng.permutation(sorted(self.by_item)):
            order.extend(rng.permutation(self.by_item[int(idx)]).tolist())
        for b in range(len(self)):
            yield order[b * self.batch_size : (b + 1) * self.batch_size]


class _SharedSegmentBatches(Dataset):
    """Dynamic training windows batched so that each 0.5 s segment is embedded once
    (``DynamicTask(train_reuse=True)``); indexed by a list of window indices (:class:`_TrackGroupedBatches`).

    A batch is a dict:

    - ``segments`` ``(n_unique, 1, frames_per_segment, n_bins)``: the segments of the span each of its tracks
      covers (from its first window's start to its last window's end, padded like a window);
    - ``index`` ``(n_windows, window_segments)``: the row of ``segments`` of each window's segment;
    - ``target``, ``mask`` ``(n_windows, window_segments, 2)``.
    """

    def __init__(self, examples: _Examples, frames_per_segment: int):
        self.ex, self.fps_seg = examples, int(frames_per_segment)

    def __len__(self) -> int:
        return len(self.ex.entries)

    def __getitem__(self, rows: list[int]) -> dict:
        return self._batch(list(rows))

    def _batch(self, rows: list[int]) -> dict:
        ex, f = self.ex, self.fps_seg
        w = ex.length // f
        needed: dict[int, set[int]] = {}  # item -> the segments its windows in this batch cover
        for j in rows:
            idx, start = ex.entries[j][0], ex.entries[j][1] // f
            needed.setdefault(idx, set()).update(range(start, start + w))
        segs, row_of, offset = [], {}, 0
        for idx, seg_ids in needed.items():
            ids = sorted(seg_ids)
            run_start = 0
            for k in range(1, len(ids) + 1):  # crop each contiguous run of segments once
                if k == len(ids) or ids[k] != ids[k - 1] + 1:
                    first, n = ids[run_start], k - run_start
                    frames = crop_frames(ex.items[idx].feats, first * f, n * f, ex.pad)
                    for q in range(n):
                        row_of[(idx, first + q)] = offset + q
                    segs.append(frames.reshape(n, f, frames.shape[1]))
                    offset += n
                    run_start = k
        index = np.array(
            [[row_of[(ex.entries[j][0], ex.entries[j][1] // f + q)] for q in range(w)] for j in rows],
            dtype=np.int64,
        )
        return {
            "segments": torch.from_numpy(np.concatenate(segs))[:, None],
            "index": torch.from_numpy(index),
            "target": torch.from_numpy(np.stack([np.asarray(ex.entries[j][2], np.float32) for j in rows])),
            "mask": torch.from_numpy(np.stack([np.asarray(ex.entries[j][3], np.float32) for j in rows])),
        }


def _masked_ccc_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6):
    """1 - CCC per sequence over the valid (mask=1) steps, averaged over sequences with >= 2 valid steps.

    Shapes: ``(batch, time)`` each.
    """
    n = mask.sum(1)
    keep = n >= 2
    if not bool(keep.any()):
        return pred.sum() * 0.0
    pred, target, mask, n = pred[keep], target[keep], mask[keep], n[keep]
    mp = (pred * mask).sum(1) / n
    mt = (target * mask).sum(1) / n
    dp, dt = (pred - mp[:, None]) * mask, (target - mt[:, None]) * mask
    vp, vt = (dp**2).sum(1) / n, (dt**2).sum(1) / n
    cov = (dp * dt).sum(1) / n
    ccc = 2 * cov / (vp + vt + (mp - mt) ** 2 + eps)
    return (1 - ccc).mean()


def _masked_rmse_loss(pred, target, mask, eps: float = 1e-8):
    """Root of the masked mean squared error over the whole batch."""
    se = ((pred - target) ** 2 * mask).sum()
    return torch.sqrt(se / mask.sum().clamp_min(1.0) + eps)


def _masked_mse_loss(pred, target, mask):
    return ((pred - target) ** 2 * mask).sum() / mask.sum().clamp_min(1.0)


LOSSES = {"ccc": _masked_ccc_loss, "rmse": _masked_rmse_loss, "mse": _masked_mse_loss}


def _loss_fn(name: str):
    try:
        return LOSSES[name]
    except KeyError:
        raise KeyError(f"unknown loss {name!r}; known: {', '.join(sorted(LOSSES))}") from None


class _Task:
    def train_loader(self, examples: Dataset, *, batch_size: int, seed: int, num_workers: int = 0):
        """The training batches: ``batch_size`` shuffled examples, the last partial batch dropped."""
        return torch.utils.data.DataLoader(
            examples,
            batch_size=batch_size,
            shuffle=True,
            num_workers=num_workers,
            generator=torch.Generator().manual_seed(seed),
            drop_last=len(examples) > batch_size,
        )

    def training_losses(self, model, batch) -> tuple[dict, int]:
        """Named losses (``loss`` is the one optimised) of one training batch, and its number of examples."""
        x, y, m = batch
        return self.loss(model(x), y, m), len(x)

    def predict_item(self, model, item: Item, *, device="cpu"):
        """What :meth:`evaluate` scores for one item (by default the whole-track prediction)."""
        return self.predict(model, item.feats, device=device)


@TASKS.register("dynamic")
class DynamicTask(_Task):
    """Per-0.5 s valence-arousal regression (DAMFF §3, §4.3, §4.4.1).

    Parameters
    ----------
    features : FeatureConfig
    window_s : float
        Training / sliding window length (30 s in the paper).
    train_hop_s : float
        Step between training windows cut from one track (the paper cuts MER1101 training songs into
        consecutive 30 s segments, i.e. 30; smaller values give overlapping windows, more examples).
    losses : dict
        Loss per dimension, ``{"valence": "rmse", "arousal": "ccc"}`` as §4.3.
    hop_valence, hop_arousal : float
        Sliding-window hops used to predict whole tracks (evaluation and ``predict``).
    train_reuse : bool
        Embed each 0.5 s segment once per training batch (models with ``embed_segments``, i.e. DAMFF), as
        :mod:`moodscope.inference` does at test time. Overlapping windows (``train_hop_s < window_s``) share
        their segments, so a batch is formed from the windows of a few tracks (tracks shuffled, then their
        windows in random order, ``batch_size`` windows a batch) and the CNN runs once on the union of their
        segments; the BiLSTM and the loss still see every window. With ``train_hop_s = 2.5`` this cuts the
        CNN's work about 4.7x. Two things differ from plain window batches: a batch holds fewer distinct
        tracks, and BatchNorm's batch statistics count each segment once. Off by default (the papers'
        protocol, and ``train_hop_s = window_s`` shares nothing); the demo turns it on.
    """

    kind = "dynamic"

    def __init__(
        self,
        features: FeatureConfig,
        *,
        window_s: float = 30.0,
        train_hop_s: float = 30.0,
        losses: dict | None = None,
        hop_valence: float = 0.5,
        hop_arousal: float = 0.5,
        train_reuse: bool = False,
    ):
        self.features = features
        self.train_reuse = bool(train_reuse)
        self.window_s = float(window_s)
        self.train_hop_s = float(train_hop_s)
        self.losses = {"valence": "rmse", "arousal": "ccc", **(losses or {})}
        for v in self.losses.values():
            _loss_fn(v)
        self.hop_valence = float(hop_valence)
        self.hop_arousal = float(hop_arousal)
        self.fps_seg = features.frames_per_segment
        self.window_segments = int(round(self.window_s / SEGMENT_S))

    def info(self) -> dict:
        return {
            "kind": self.kind,
            "window_s": self.window_s,
            "hop_valence": self.hop_valence,
            "hop_arousal": self.hop_arousal,
        }

    # -- training examples ---------------------------------------------------------------------------------
    def window_starts(self, item: Item) -> list[int]:
        """Start segments of the training windows of ``item``: every ``train_hop_s`` over its labelled span."""
        lab = np.flatnonzero(~np.isnan(item.dynamic).any(1))
        if len(lab) == 0:
            return []
        first, last = int(lab[0]), int(lab[-1]) + 1
        w = self.window_segments
        if last - first <= w:
            return [first]
        hop = max(1, int(round(self.train_hop_s / SEGMENT_S)))
        starts = list(range(first, last - w + 1, hop))
        if starts[-1] != last - w:
            starts.append(last - w)
        return starts

    def examples(self, items: list[Item], model, *, seed: int = 0) -> Dataset:
        entries = []
        w = self.window_segments
        for i, it in enumerate(items):
            if it.dynamic is None:
                continue
            for s in self.window_starts(it):
                y = np.full((w, 2), np.nan, dtype=np.float32)
                seg = it.dynamic[s : s + w]
                y[: len(seg)] = seg
                # segments beyond the audio carry no label either
                n_audio = it.n_frames // self.fps_seg
                if s + w > n_audio:
                    y[max(0, n_audio - s) :] = np.nan
                mask = (~np.isnan(y)).astype(np.float32)
                entries.append((i, s * self.fps_seg, np.nan_to_num(y), mask))
        return _Examples(items, entries, w * self.fps_seg, _pad_value(model), reuse=self._reuses(model))

    def _reuses(self, model) -> bool:
        return self.train_reuse and hasattr(model, "embed_segments") and hasattr(model, "sequence_head")

    def train_loader(self, examples: Dataset, *, batch_size: int, seed: int, num_workers: int = 0):
        """Plain window batches, or (``train_reuse``) batches of the windows of a few tracks, segments shared."""
        if not (isinstance(examples, _Examples) and examples.reuse):
            return super().train_loader(examples, batch_size=batch_size, seed=seed, num_workers=num_workers)
        return torch.utils.data.DataLoader(
            _SharedSegmentBatches(examples, self.fps_seg),
            sampler=_TrackGroupedBatches(examples.entries, batch_size, seed),
            batch_size=None,
            num_workers=num_workers,
        )

    def training_losses(self, model, batch) -> tuple[dict, int]:
        if not isinstance(batch, dict):
            return super().training_losses(model, batch)
        emb = model.embed_segments(batch["segments"])  # (n_unique, d): each segment once
        index = batch["index"]
        # index_select, not emb[index]: the backward of advanced indexing accumulates with a parallel
        # index_put_ whose order varies between runs on a multi-threaded CPU; index_add_ sums in index order
        windows = emb.index_select(0, index.reshape(-1)).view(*index.shape, emb.shape[-1])
        pred = model.sequence_head(windows)  # (n_windows, window_segments, 2)
        return self.loss(pred, batch["target"], batch["mask"]), len(batch["index"])

    def loss(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict:
        """``pred``/``target``/``mask``: ``(batch, segments, 2)``. Returns named losses incl. ``loss`` (the sum)."""
        out = {}
        for d, name in enumerate(("valence", "arousal")):
            out[f"loss_{name}"] = _loss_fn(self.losses[name])(pred[..., d], target[..., d], mask[..., d])
        out["loss"] = out["loss_valence"] + out["loss_arousal"]
        return out

    # -- whole tracks --------------------------------------------------------------------------------------
    def predict(self, model, feats: np.ndarray, *, device="cpu") -> np.ndarray:
        """V-A curve ``(n_segments, 2)`` of a whole track with the sliding window (embedding reuse)."""
        from .inference import sliding_predict

        return sliding_predict(
            model,
            feats,
            window_segments=self.window_segments,
            hop_valence=self.hop_valence,
            hop_arousal=self.hop_arousal,
            mode="reuse" if hasattr(model, "embed_segments") else "naive",
            device=device,
        )

    def evaluate(self, items: list[Item], preds: list[np.ndarray]) -> OrderedDict:
        """CCC/PCC/RMSE per song over its labelled segments, averaged across songs (§4.2)."""
        from .metrics import evaluate_dynamic

        refs, ests = [], []
        for it, p in zip(items, preds):
            n = min(len(it.dynamic), len(p))
            ok = ~np.isnan(it.dynamic[:n]).any(1)
            if ok.sum() >= 2:
                refs.append(it.dynamic[:n][ok])
                ests.append(p[:n][ok])
        if not refs:
            raise ValueError("no track has at least two labelled segments to evaluate")
        return evaluate_dynamic(refs, ests)

    @staticmethod
    def score(metrics: dict) -> float:
        """The early-stopping score: mean CCC of valence and arousal (CCC is the paper's main metric)."""
        return 0.5 * (metrics["valence_ccc"] + metrics["arousal_ccc"])


@TASKS.register("static")
class StaticTask(_Task):
    """Clip-level V-A regression or classification (ADFF §2-§3).

    ``head`` is the ADFF model's ``task`` argument: ``valence``/``arousal`` (single-task regression),
    ``multitask`` (V and A), ``binary`` (2 classes per dimension by sign) or ``quadrant`` (4 classes).
    ``dataset`` is ``simple`` (one random ``seg_len_s`` crop per clip, drawn once with ``seed``) or ``full``
    (consecutive segments, ADFF §3.1).
    """

    kind = "static"

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

    def info(self) -> dict:
        return {"kind": self.kind, "seg_len_s": self.seg_len_s, "head": self.head}

    def _target(self, static: np.ndarray):
        from .protocols import label_to_class

        v, a = float(static[0]), float(static[1])
        if self.head == "valence":
            return np.array([v], np.float32)
        if self.head == "arousal":
            return np.array([a], np.float32)
        if self.head == "multitask":
            return np.array([v, a], np.float32)
        return np.atleast_1d(np.asarray(label_to_class(v, a, self.head), dtype=np.float32))

    def examples(self, items: list[Item], model, *, seed: int = 0) -> Dataset:
        from .protocols import full_segments, simple_crops

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
        return _Examples(items, entries, self.length, _silence_pad(model))

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
        wins = segment_windows(feats, self.seg_len_s, self.fps, _silence_pad(model))
        return run_windows(model, wins, device=device, batch_size=batch_size)

    def predict(self, model, feats: np.ndarray, *, device="cpu") -> np.ndarray:
        """A track's prediction: regression ``(n_out,)`` mean over windows, or class probabilities."""
        from .protocols import aggregate_track

        return np.asarray(aggregate_track(self.raw_outputs(model, feats, device=device), self.head))

    def evaluate(self, items: list[Item], preds: list[np.ndarray]) -> OrderedDict:
        from .metrics import evaluate_classes, evaluate_static

        ref = np.stack([it.static for it in items])
        if self.head == "multitask":
            return evaluate_static(ref, np.stack(preds))
        if self.head in ("valence", "arousal"):
            from .metrics import r2, rmse

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

    def score(self, metrics: dict) -> float:
        """Early-stopping score: mean R² (regression) or mean accuracy (classification)."""
        keys = [k for k in metrics if k.endswith("_r2")] or [k for k in metrics if k.endswith("accuracy")]
        return float(np.mean([metrics[k] for k in keys]))


@TASKS.register("tags")
class TagTask(_Task):
    """Multi-label emotion tagging on ``seg_len_s`` segments (Liu et al. 2017; CAL500, CAL500exp).

    Song-level tags (CAL500): every consecutive ``seg_len_s`` segment of a song carries the song's tags.
    Segment-level tags (CAL500exp): each labelled segment is one example (cropped or padded to ``seg_len_s``).
    A track's probabilities are the mean of its windows' sigmoid outputs.
    """

    kind = "tags"

    def __init__(self, features: FeatureConfig, *, seg_len_s: float = 10.0, tag_names=(), thresholds=None):
        self.features = features
        self.seg_len_s = float(seg_len_s)
        self.fps = features.frames_per_second
        self.length = int(round(self.seg_len_s * self.fps))
        self.tag_names = list(tag_names)
        self.thresholds = None if thresholds is None else np.asarray(thresholds, dtype=np.float32)

    def info(self) -> dict:
        return {
            "kind": self.kind,
            "seg_len_s": self.seg_len_s,
            "tag_names": self.tag_names,
            "thresholds": None if self.thresholds is None else self.thresholds.tolist(),
        }

    def examples(self, items: list[Item], model, *, seed: int = 0) -> Dataset:
        from .protocols import full_segments

        entries = []
        for i, it in enumerate(items):
            if it.segments:
                for start_s, end_s, tags in it.segments:
                    mid = 0.5 * (start_s + end_s) * self.fps
                    entries.append((i, int(round(mid - self.length / 2)), tags, np.ones_like(tags)))
            elif it.tags is not None:
                for span in full_segments(it.n_frames, self.seg_len_s, fps=self.fps):
                    entries.append((i, int(span[0]), it.tags, np.ones_like(it.tags)))
        return _Examples(items, entries, self.length, _silence_pad(model))

    def loss(self, pred, target, mask) -> dict:
        import torch.nn.functional as F

        return {"loss": F.binary_cross_entropy_with_logits(pred, target, weight=mask)}

    def predict(self, model, feats: np.ndarray, *, device="cpu", batch_size: int = 16) -> np.ndarray:
        wins = segment_windows(feats, self.seg_len_s, self.fps, _silence_pad(model))
        return _sigmoid(run_windows(model, wins, device=device, batch_size=batch_size)).mean(0)

    def predict_item(self, model, item: Item, *, device="cpu"):
        """Track-level probabilities ``(n_tags,)``, or ``(n_segments, n_tags)`` for segment-labelled items."""
        if not item.segments:
            return self.predict(model, item.feats, device=device)
        pad = _silence_pad(model)
        wins = []
        for start_s, end_s, _ in item.segments:
            mid = 0.5 * (start_s + end_s) * self.fps
            wins.append(crop_frames(item.feats, int(round(mid - self.length / 2)), self.length, pad))
        return _sigmoid(run_windows(model, np.stack(wins), device=device))

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
        from .metrics import multilabel_scores

        y, p = self.gather(items, preds)
        out = multilabel_scores(y, p, threshold=0.5 if self.thresholds is None else self.thresholds)
        q = np.clip(p, 1e-7, 1 - 1e-7)
        out["log_loss"] = float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))  # mean BCE per (item, tag)
        return out

    def per_tag(self, items: list[Item], preds: list[np.ndarray]) -> OrderedDict:
        """Precision, recall, F1, ROC-AUC, PR-AUC and support of each tag (:func:`metrics.per_tag_scores`)."""
        from .metrics import per_tag_scores

        y, p = self.gather(items, preds)
        thr = 0.5 if self.thresholds is None else self.thresholds
        names = self.tag_names if len(self.tag_names) == y.shape[1] else None
        return per_tag_scores(y, p, threshold=thr, tags=names)

    @staticmethod
    def score(metrics: dict) -> float:
        """The early-stopping score: minus the validation log loss (mean binary cross-entropy).

        Not ROC-AUC: on the few validation songs of a fold, AUC reaches 1.0 within a few epochs and stays
        there, so early stopping would keep an under-trained early model (seen on the synthetic corpus: the
        best AUC at epoch 2-7 of 30). The log loss keeps moving while the probabilities sharpen.
        """
        return -float(metrics["log_loss"])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def make_task(kind: str, features: FeatureConfig, **options):
    """Build the task for a model output kind (``dynamic``, ``static``, ``tags``)."""
    return TASKS.get(kind)(features, **options)
