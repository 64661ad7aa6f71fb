"""What the dynamic V-A models of DAMFF's Table 2 (DAMFF §4.4.3) share: a per-segment front end and a
sequence model (:class:`SegmentSequenceModel`). One file per model: :mod:`.crnn`, :mod:`.bcrsn`,
:mod:`.dnn_raw`, :mod:`.mcrnn`.

All four produce one (valence, arousal) pair per 0.5 s segment, ``(batch, n_segments, 2)``, so the DAMFF
protocol (30 s training windows of 60 segments, sliding-window evaluation of whole songs) applies
unchanged. DAMFF reports that it re-implemented them under its own protocol ("the same dataset,
evaluation metrics, and metric calculation method"), which is what we do too.

Every model here is a per-segment front end followed by a sequence model, so each implements
``embed_segments(seg) -> (n, d)`` and ``sequence_head(emb) -> (batch, n_segments, 2)``, and ``forward`` is
exactly their composition: inference may embed every 0.5 s segment of a song once and re-run only the
recurrent part per window (:mod:`moodscope.models.base`). For models whose published front end sees
more than one segment at a time, confining the convolutions to one segment is our choice (documented per
model); it is the same choice DAMFF makes for itself (§3.1).

Input lengths: ``frames`` need not be a multiple of the segment length; the trailing partial segment
(< 0.5 s) is dropped, as a 0.5 s grid value describes a whole segment. At least one segment is needed.

What we could verify about each paper (from their abstracts and DAMFF's description; the full texts were
not available to us) is listed in each class docstring under "Verified"; everything else is "Chosen".

=========  =====================  ===============  =========================================================
name       paper                  features         structure
=========  =====================  ===============  =========================================================
crnn       Malik et al. 2017      log-Mel          conv front end, two separate stacked-GRU branches (V, A)
bcrsn      Dong et al. 2019       log-Mel          CNN as the input-to-hidden map of a BiLSTM, sparse layer
dnn_raw    Orjesek et al. 2019    waveform 16 kHz  1-D convs on the raw segment, bidirectional GRU
mcrnn      He & Ferguson 2020     waveform 16 kHz  waveform view + log-Mel view (computed inside), 2 BiLSTM
=========  =====================  ===============  =========================================================

Raw-waveform models declare ``feature_kind = "waveform"`` and ``default_sr``: the trainer computes
:class:`moodscope.config.FeatureConfig` ``(kind="waveform", sr=default_sr)`` features for them, i.e. arrays
``(samples, 1)``, so their input tensor is ``(batch, 1, samples, 1)`` and a 0.5 s segment is ``sr // 2``
"frames". Their :class:`InputNorm` has one band (the waveform), initialised to the identity (mean 0,
std 1) until the trainer sets the training statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from .base import MoodModel
from .blocks import ConvBNReLUPool


def scaled_width(n: int, width: float) -> int:
    """``n`` channels or units scaled by the width multiplier (at least 2)."""
    return max(2, int(round(n * width)))


def check_width(width: float) -> None:
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")


class SegmentSequenceModel(MoodModel):
    """Common plumbing: cut ``(batch, 1, frames, n_mels)`` into 0.5 s segments, embed, run the sequence head.

    Subclasses set ``self.segment_frames`` (frames -- or samples, for waveform input -- per segment),
    ``self.n_mels`` (the input feature width: mel bands, or 1 for a waveform; the names match DAMFF and
    :mod:`moodscope.inference`) and ``self.norm``, and implement ``_embed`` (on normalised segments) and
    ``sequence_head``.
    """

    output: ClassVar[str] = "dynamic"
    feature_kind: ClassVar[str] = "logmel"
    segment_frames: int
    n_mels: int

    def _check_input(self, x: torch.Tensor) -> None:
        unit = "samples" if self.feature_kind == "waveform" else "frames"
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[-1] != self.n_mels:
            raise ValueError(
                f"{self.model_name or type(self).__name__}: expected input (batch, 1, {unit}, {self.n_mels}), "
                f"got {tuple(x.shape)}"
            )
        if x.shape[2] < self.segment_frames:
            raise ValueError(
                f"{self.model_name or type(self).__name__}: input has {x.shape[2]} {unit}, fewer than one "
                f"0.5 s segment ({self.segment_frames} {unit})"
            )

    def split_segments(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, frames, n_mels)`` -> ``(batch * n_segments, 1, segment_frames, n_mels)``.

        Segment ``i`` of batch item ``b`` is row ``b * n_segments + i``; a trailing partial segment is dropped.
        """
        self._check_input(x)
        b, _, t, m = x.shape
        n = t // self.segment_frames
        seg = x[:, 0, : n * self.segment_frames]  # (batch, n * L, n_mels)
        return seg.reshape(b * n, 1, self.segment_frames, m)  # (batch * n, 1, L, n_mels)

    def embed_segments(self, seg: torch.Tensor) -> torch.Tensor:
        """Embed independent 0.5 s segments.

        Parameters
        ----------
        seg : torch.Tensor [shape=(n, 1, segment_frames, n_mels)]
            Un-normalised features (dB log-Mel or waveform), as stored in the feature cache.

        Returns
        -------
        torch.Tensor [shape=(n, embed_dim)]
        """
        if seg.dim() != 4 or tuple(seg.shape[1:]) != (1, self.segment_frames, self.n_mels):
            raise ValueError(
                f"{self.model_name or type(self).__name__}: embed_segments expects "
                f"(n, 1, {self.segment_frames}, {self.n_mels}), got {tuple(seg.shape)}"
            )
        return self._embed(self.norm(seg))

    def _embed(self, seg: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def sequence_head(self, emb: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, frames, n_mels)`` -> ``(batch, frames // segment_frames, 2)`` (valence, arousal)."""
        b = x.shape[0]
        emb = self.embed_segments(self.split_segments(x))  # (batch * n_seg, d)
        return self.sequence_head(emb.reshape(b, -1, emb.shape[-1]))  # (batch, n_seg, 2)


class WaveformFrontEnd(nn.Module):
    """1-D convolutions on a raw waveform segment, then global mean + max pooling over time.

    Layer 1 is a learnable filterbank: ``Conv1d`` with a 25 ms kernel and a 10 ms stride (the frame
    and hop of a typical short-time analysis, expressed in samples at ``sr``). Each further layer is
    ``Conv1d`` (kernel 3, "same") -> BN -> ReLU -> ``MaxPool1d(2)``.

    Shape: ``(n, 1, samples)`` -> ``(n, 2 * channels[-1])``.
    """

    def __init__(self, sr: int, channels: Sequence[int], *, win_s: float = 0.025, hop_s: float = 0.010):
        super().__init__()
        k = max(2, int(round(win_s * sr)))
        s = max(1, int(round(hop_s * sr)))
        layers: list[nn.Module] = [
            nn.Conv1d(1, channels[0], k, stride=s, bias=False),
            nn.BatchNorm1d(channels[0]),
            nn.ReLU(inplace=True),
        ]
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [
                nn.Conv1d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm1d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool1d(2),
            ]
        self.net = nn.Sequential(*layers)
        self.out_dim = 2 * channels[-1]

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        h = self.net(y)  # (n, C, steps)
        return torch.cat([h.mean(-1), h.amax(-1)], dim=1)  # (n, 2C)


def spectral_cnn(channels: Sequence[int], kernel_size: int) -> nn.Sequential:
    """``ConvBNReLUPool`` blocks with 2x2 max pooling, starting from one input channel."""
    chans = [1, *channels]
    return nn.Sequential(*[ConvBNReLUPool(a, b, kernel_size, pool=2) for a, b in zip(chans[:-1], chans[1:])])


def global_meanmax(h: torch.Tensor) -> torch.Tensor:
    """``(n, C, T, F)`` -> ``(n, 2C)``: mean and max over time and frequency."""
    h = h.flatten(2)  # (n, C, T*F)
    return torch.cat([h.mean(-1), h.amax(-1)], dim=1)  # (n, 2C)
