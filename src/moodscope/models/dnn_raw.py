"""DNN on the raw waveform (Orjesek et al. 2019), one of DAMFF's Table 2 comparisons; see
:mod:`moodscope.models.sequence`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from ..config import SAMPLE_RATE, SEGMENT_S, integer_list
from .base import DROPOUT, LAYERS, LAYERS_MAX, UNITS, WIDTH, InputNorm, register_model
from .sequence import SegmentSequenceModel, WaveformFrontEnd, check_width, scaled_width


# --------------------------------------------------------------------------------------------------------
@register_model("dnn_raw")
class DNNRaw(SegmentSequenceModel):
    """1-D convolutions on the raw waveform and a bidirectional GRU (Orjesek et al. 2019).

    R. Orjesek, R. Jarina, M. Chmulik, M. Kuba, "DNN based music emotion recognition from raw audio
    signal", Proc. Radioelektronika 2019, pp. 1-4. DAMFF reference [17].

    Verified: end-to-end from the raw waveform, 1-D convolutions, a bidirectional recurrent layer,
    dynamic V-A on DEAM (DAMFF §2/§4.4.3 and the issue). A later journal paper on the same task
    (Multimedia Tools and Applications, doi:10.1007/s11042-021-11584-7, which we take to be this group's
    follow-up; its author list was not in the abstract we read) names the recurrent layer: "stacking
    one-dimensional convolution layer, autoencoder-based layer with iterative reconstruction, and
    bidirectional gated recurrent unit". We use the GRU; the autoencoder "iterative reconstruction"
    layer is that later paper's contribution and is not included.

    Chosen: 16 kHz mono input (``default_sr``); per 0.5 s segment (8000 samples) a learnable filterbank
    (``Conv1d``, 25 ms kernel, 10 ms stride, 128 filters) then two ``Conv1d`` blocks (kernel 3, BN, ReLU,
    max-pool 2; 128 and 256 channels), global mean + max pooling; one bidirectional GRU layer of 128 units
    per direction over the segments; linear output.

    Input: ``(batch, 1, samples, 1)`` waveform features at ``sr`` (``FeatureConfig(kind="waveform")``).

    Parameters
    ----------
    sr : int
        Sample rate of the input waveform; a segment is ``sr // 2`` samples.
    width : float
    channels : sequence of int
        Filterbank filters, then the channels of each further conv block, at ``width=1``.
    rnn_hidden, rnn_layers : int
    dropout : float
    """

    feature_kind: ClassVar[str] = "waveform"
    default_sr: ClassVar[int] = 16000

    arg_settings = {
        "sr": SAMPLE_RATE,
        "width": WIDTH,
        "channels": integer_list(1, 4096, max_len=LAYERS_MAX),
        "rnn_hidden": UNITS,
        "rnn_layers": LAYERS,
        "dropout": DROPOUT,
    }

    def __init__(
        self,
        *,
        sr: int = 16000,
        width: float = 1.0,
        channels: Sequence[int] = (128, 128, 256),
        rnn_hidden: int = 128,
        rnn_layers: int = 1,
        dropout: float = 0.3,
    ):
        super().__init__()
        check_width(width)
        self.sr = int(sr)
        self.n_mels = 1
        self.segment_frames = int(round(SEGMENT_S * self.sr))
        self.norm = InputNorm(1, mean=0.0, std=1.0)  # identity until the trainer sets the stats
        self.frontend = WaveformFrontEnd(self.sr, [scaled_width(c, width) for c in channels])
        self.embed_dim = self.frontend.out_dim
        h = scaled_width(rnn_hidden, width)
        self.drop = nn.Dropout(dropout)
        self.rnn = nn.GRU(
            self.embed_dim,
            h,
            num_layers=rnn_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if rnn_layers > 1 else 0.0,
        )
        self.fc = nn.Linear(2 * h, 2)

    def _embed(self, seg: torch.Tensor) -> torch.Tensor:
        return self.frontend(seg[:, :, :, 0])  # (n, 1, samples) -> (n, embed_dim)

    def sequence_head(self, emb: torch.Tensor) -> torch.Tensor:
        """``(batch, n_segments, embed_dim)`` -> ``(batch, n_segments, 2)``."""
        h, _ = self.rnn(self.drop(emb))  # (batch, n_seg, 2 * hidden)
        return self.fc(self.drop(h))
