"""The dynamic task: a valence-arousal curve every 0.5 s (DAMFF and its Table 2 comparisons)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch.utils.data import Dataset

from ..config import SEGMENT_S, FeatureConfig, choice, flag, mapping, number
from ..inference.sliding import hop_segments, predict_from_blocks, sliding_predict
from ..metrics import evaluate_dynamic
from .base import LOSSES, TASKS, Item, Task, WindowExamples, loss_fn, pad_value
from .batching import SharedSegmentBatches, TrackGroupedBatches


@TASKS.register("dynamic")
class DynamicTask(Task):
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
    streams = True  # segment embeddings are computed block by block (predict_from_blocks)
    option_settings = {
        "window_s": number(SEGMENT_S, 600),
        "train_hop_s": number(0, 600, lo_open=True),
        "losses": mapping({"valence": choice(LOSSES), "arousal": choice(LOSSES)}, none=True),
        "hop_valence": number(SEGMENT_S, 600),
        "hop_arousal": number(SEGMENT_S, 600),
        "train_reuse": flag(),
    }

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
            loss_fn(v)
        self.hop_valence = float(hop_valence)
        self.hop_arousal = float(hop_arousal)
        self.fps_seg = features.frames_per_segment
        self.window_segments = int(round(self.window_s / SEGMENT_S))

        for name, hop in (("valence", self.hop_valence), ("arousal", self.hop_arousal)):
            hop_segments(name, hop, self.window_segments)  # a bad hop fails here, before any audio is read

    def has_labels(self, item: Item) -> bool:
        return item.dynamic is not None

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
        return WindowExamples(items, entries, w * self.fps_seg, pad_value(model), reuse=self._reuses(model))

    def _reuses(self, model) -> bool:
        return self.train_reuse and hasattr(model, "embed_segments") and hasattr(model, "sequence_head")

    def train_loader(self, examples: Dataset, *, batch_size: int, seed: int, num_workers: int = 0):
        """Plain window batches, or (``train_reuse``) batches of the windows of a few tracks, segments shared."""
        if not (isinstance(examples, WindowExamples) and examples.reuse):
            return super().train_loader(examples, batch_size=batch_size, seed=seed, num_workers=num_workers)
        return torch.utils.data.DataLoader(
            SharedSegmentBatches(examples, self.fps_seg),
            sampler=TrackGroupedBatches(examples.entries, batch_size, seed),
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

    @classmethod
    def for_prediction(cls, features: FeatureConfig, options: dict, **overrides):
        """Only the window and the hops matter when predicting; ``hop_valence``/``hop_arousal`` override."""
        keep = {k: v for k, v in options.items() if k in ("window_s", "hop_valence", "hop_arousal")}
        return super().for_prediction(features, keep, **overrides)

    def predict_blocks(self, model, blocks, *, device="cpu", autocast=None) -> np.ndarray:
        """V-A curve of a track given as feature blocks: each segment embedded once, block by block (memory
        independent of the track's length), then the sliding window over the embeddings. ``autocast`` applies
        to the embedding; the BiLSTM head runs in float32. A file and the same audio as an array give the
        same curve."""
        if not hasattr(model, "embed_segments"):
            return super().predict_blocks(model, blocks, device=device, autocast=autocast)

        return predict_from_blocks(
            model,
            iter([blocks]) if isinstance(blocks, np.ndarray) else blocks,
            window_segments=self.window_segments,
            hop_valence=self.hop_valence,
            hop_arousal=self.hop_arousal,
            device=device,
            autocast=autocast,
        )

    def result_fields(self, out: np.ndarray, duration_s: float) -> dict:
        """The curve on the 0.5 s grid (a trailing partial segment dropped); the static point is its mean."""
        n_audio = max(1, int(round(duration_s / SEGMENT_S)))
        curve = np.asarray(out)[:n_audio]
        dynamic = {
            "hop_s": SEGMENT_S,
            "times_s": np.arange(len(curve)) * SEGMENT_S,
            "valence": curve[:, 0],
            "arousal": curve[:, 1],
        }
        static = {"valence": float(curve[:, 0].mean()), "arousal": float(curve[:, 1].mean())}
        return {"static": static, "dynamic": dynamic}

    def loss(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict:
        """``pred``/``target``/``mask``: ``(batch, segments, 2)``. Returns named losses incl. ``loss`` (the sum)."""
        out = {}
        for d, name in enumerate(("valence", "arousal")):
            out[f"loss_{name}"] = loss_fn(self.losses[name])(pred[..., d], target[..., d], mask[..., d])
        out["loss"] = out["loss_valence"] + out["loss_arousal"]
        return out

    # -- whole tracks --------------------------------------------------------------------------------------
    def predict(self, model, feats: np.ndarray, *, device="cpu") -> np.ndarray:
        """V-A curve ``(n_segments, 2)`` of a whole track with the sliding window (embedding reuse)."""

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

    # -- the classical reference: a linear model per 0.5 s segment on context statistics -------------------
    def classical_examples(self, item: Item, ref):
        if item.dynamic is None:
            return None
        stats = ref.segment_stats(item)
        n = min(len(stats), len(item.dynamic))
        ok = ~np.isnan(item.dynamic[:n]).any(1)
        return stats[:n][ok], item.dynamic[:n][ok]

    def classical_estimator(self, ref):
        return ref.regressor()

    def classical_predict(self, estimator, item: Item, ref) -> np.ndarray:
        return estimator.predict(ref.segment_stats(item))

    @staticmethod
    def score(metrics: dict) -> float:
        """The early-stopping score: mean CCC of valence and arousal (CCC is the paper's main metric)."""
        return 0.5 * (metrics["valence_ccc"] + metrics["arousal_ccc"])
