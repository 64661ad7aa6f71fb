"""Spectrogram CNN for multi-label emotion tagging (Liu et al. 2017).

X. Liu, Q. Chen, X. Wu, Y. Liu, Y. Liu, "CNN based music emotion classification" (2017,
arXiv:1704.05665). Our copy has only the abstract (``papers/cnn-emotion-classification-liu2017-abstract.txt``).

What the abstract states, and how it maps to this model:

- music emotion recognition as *multi-label tagging*, each segment of music inspiring specific tags
  -> one independent sigmoid output per tag, trained with binary cross-entropy (``output = "tags"``);
- a deep CNN on the music *spectrogram* "that contains both the original time and frequency domain
  information" -> 2-D convolutions over time and frequency of the log-Mel spectrogram, pooling in both;
- no hand-made features, learned end to end; evaluated on CAL500 (song-level tags) and CAL500exp
  (segment-level tags, 3-16 s segments).

Everything else is our choice (documented in :class:`EmotionTagger`) and selectable by argument, so a
configuration can follow the full paper where someone has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from ..config import choice, int_or_pair, integer, integer_list
from .base import DROPOUT, FC_MAX, N_MELS, UNITS, WIDTH, InputNorm, MoodModel, register_model
from .blocks import ConvBNReLUPool

__all__ = ["EmotionTagger", "FREQ_REDUCTIONS", "GLOBAL_POOLS", "POOL_TYPES"]

#: Pooling after each conv block.
POOL_TYPES = ("max", "avg")
#: How the remaining frequency bins are reduced after the conv blocks.
FREQ_REDUCTIONS = ("flatten", "mean", "max")
#: Pooling over time before the fully connected layers.
GLOBAL_POOLS = ("meanmax", "mean", "max")


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    if len(v) != 2:
        raise ValueError(f"expected an int or a (time, freq) pair, got {v!r}")
    return (int(v[0]), int(v[1]))


@register_model("tagger")
class EmotionTagger(MoodModel):
    """CNN emotion tagger on log-Mel segments: conv blocks, global pooling, FC layers, one logit per tag.

    Architecture (defaults in brackets; all chosen, see the module docstring for what the paper states):

    1. :class:`InputNorm` per mel band (training-set statistics, stored in the model file).
    2. ``n_conv_layers`` [4] blocks of ``kernel_size`` [3x3] convolution ("same" padding) -> batch norm
       -> ReLU -> ``pool`` [max] pooling of ``pool_size`` [2x2] over (time, frequency). Channels
       ``base_channels * 2**i * width`` [32, 64, 128, 256]: the VGG-style doubling common to
       spectrogram CNNs of that period; small square kernels see both time and frequency structure,
       as the abstract stresses.
    3. ``freq_reduce`` [``"flatten"``]: the remaining frequency bins (8 at the defaults) are kept as
       features (channels x bins), so the classifier knows *where* in the spectrum a pattern occurs --
       register and brightness are emotion cues; ``"mean"``/``"max"`` over frequency instead make the
       features invariant to transposition. Then ``global_pool`` over time [``"meanmax"``: mean and max
       concatenated]: the model accepts any length (>= ``min_frames``; 16 frames = 0.16 s at the
       defaults), so 3-16 s CAL500exp segments and longer song excerpts share one network; the mean
       captures sustained character, the max short salient events.
    4. ``fc_sizes`` [(256,)] fully connected layers with ReLU and ``dropout`` [0.5] before each, then a
       linear layer to ``n_tags`` [18: CAL500's positive ``Emotion-*`` tags] logits. Train with
       ``BCEWithLogitsLoss``; ``torch.sigmoid`` gives probabilities.

    The model maps one log-Mel piece to logits and holds nothing else: the piece length, the tag names
    and the per-tag decision thresholds belong to the tagging task (:class:`moodscope.tasks.tags.TagTask`),
    which cuts long audio into pieces, aggregates their probabilities
    (the mean of the segments' probabilities), chooses thresholds on validation data
    (:func:`moodscope.tasks.tags.choose_thresholds`) and stores all three in the model file's info.

    Parameters
    ----------
    n_tags : int
    n_mels : int
    width : float
        Channel multiplier of the conv blocks (the FC sizes are not scaled).
    n_conv_layers : int
    base_channels : int
        Channels of the first block at ``width=1``; doubled in each further block.
    kernel_size : int or (int, int)
        ``(time, freq)``; odd.
    pool : {"max", "avg"}
    pool_size : int or (int, int)
        ``(time, freq)`` pooling after each block.
    freq_reduce : {"flatten", "mean", "max"}
    global_pool : {"meanmax", "mean", "max"}
    fc_sizes : sequence of int
        Hidden fully connected layers (empty: linear read-out of the pooled features).
    dropout : float
    """

    output: ClassVar[str] = "tags"
    arg_settings = {
        "n_tags": integer(1, 10000),
        "n_mels": N_MELS,
        "width": WIDTH,
        "n_conv_layers": integer(1, 16),
        "base_channels": UNITS,
        "kernel_size": int_or_pair(1, 63),
        "pool": choice(POOL_TYPES),
        "pool_size": int_or_pair(1, 16),
        "freq_reduce": choice(FREQ_REDUCTIONS),
        "global_pool": choice(GLOBAL_POOLS),
        "fc_sizes": integer_list(1, FC_MAX, min_len=0, max_len=16),
        "dropout": DROPOUT,
    }

    def __init__(
        self,
        *,
        n_tags: int = 18,
        n_mels: int = 128,
        width: float = 1.0,
        n_conv_layers: int = 4,
        base_channels: int = 32,
        kernel_size: int | Sequence[int] = 3,
        pool: str = "max",
        pool_size: int | Sequence[int] = 2,
        freq_reduce: str = "flatten",
        global_pool: str = "meanmax",
        fc_sizes: Sequence[int] = (256,),
        dropout: float = 0.5,
    ):
        super().__init__()
        if n_tags < 1:
            raise ValueError(f"tagger: n_tags must be >= 1, got {n_tags}")
        if pool not in POOL_TYPES:
            raise ValueError(f"tagger: pool must be one of {POOL_TYPES}, got {pool!r}")
        if freq_reduce not in FREQ_REDUCTIONS:
            raise ValueError(f"tagger: freq_reduce must be one of {FREQ_REDUCTIONS}, got {freq_reduce!r}")
        if global_pool not in GLOBAL_POOLS:
            raise ValueError(f"tagger: global_pool must be one of {GLOBAL_POOLS}, got {global_pool!r}")
        if not width > 0:
            raise ValueError(f"tagger: width must be > 0, got {width}")
        if n_conv_layers < 1:
            raise ValueError(f"tagger: n_conv_layers must be >= 1, got {n_conv_layers}")
        self.n_tags = n_tags
        self.n_mels = n_mels
        self.global_pool = global_pool
        self.freq_reduce = freq_reduce
        ps = _pair(pool_size)
        self.min_frames = ps[0] ** n_conv_layers
        if ps[1] ** n_conv_layers > n_mels:
            raise ValueError(f"tagger: {n_conv_layers} poolings of {ps[1]} leave no mel bands of {n_mels}")

        self.norm = InputNorm(n_mels)
        blocks: list[nn.Module] = []
        c_in = 1
        for i in range(n_conv_layers):
            c_out = max(2, int(round(base_channels * 2**i * width)))
            if pool == "max":
                blocks.append(ConvBNReLUPool(c_in, c_out, _pair(kernel_size), pool=ps))
            else:
                blocks += [ConvBNReLUPool(c_in, c_out, _pair(kernel_size), pool=1), nn.AvgPool2d(ps)]
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        d = c_in * (n_mels // ps[1] ** n_conv_layers if freq_reduce == "flatten" else 1)
        d = 2 * d if global_pool == "meanmax" else d
        fc: list[nn.Module] = []
        for h in fc_sizes:
            fc += [nn.Dropout(dropout), nn.Linear(d, int(h)), nn.ReLU(inplace=True)]
            d = int(h)
        fc += [nn.Dropout(dropout), nn.Linear(d, n_tags)]
        self.classifier = nn.Sequential(*fc)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled CNN features: ``(batch, 1, frames, n_mels)`` -> ``(batch, d)``."""
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[-1] != self.n_mels:
            raise ValueError(
                f"tagger: expected input (batch, 1, frames, {self.n_mels}), got {tuple(x.shape)}"
            )
        if x.shape[2] < self.min_frames:
            raise ValueError(f"tagger: input has {x.shape[2]} frames, needs at least {self.min_frames}")
        h = self.features(self.norm(x))  # (batch, C, T', F')
        if self.freq_reduce == "flatten":
            h = h.transpose(2, 3).flatten(1, 2)  # (batch, C * F', T')
        elif self.freq_reduce == "mean":
            h = h.mean(dim=3)  # (batch, C, T')
        else:
            h = h.amax(dim=3)  # (batch, C, T')
        if self.global_pool == "mean":
            return h.mean(-1)  # (batch, D)
        if self.global_pool == "max":
            return h.amax(-1)  # (batch, D)
        return torch.cat([h.mean(-1), h.amax(-1)], dim=1)  # (batch, 2D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, frames, n_mels)`` log-Mel dB -> ``(batch, n_tags)`` logits."""
        return self.classifier(self.embed(x))
