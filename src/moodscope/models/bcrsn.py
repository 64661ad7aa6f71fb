"""BCRSN (Dong et al. 2019), one of DAMFF's Table 2 comparisons; see :mod:`moodscope.models.sequence`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..config import integer_list, number
from .base import (
    DROPOUT,
    KERNEL,
    LAYERS,
    LAYERS_MAX,
    N_MELS,
    SEGMENT_FRAMES,
    UNITS,
    WIDTH,
    InputNorm,
    register_model,
)
from .blocks import BiLSTMRegressor
from .sequence import SegmentSequenceModel, check_width, global_meanmax, scaled_width, spectral_cnn


# --------------------------------------------------------------------------------------------------------
@register_model("bcrsn")
class BCRSN(SegmentSequenceModel):
    """Bidirectional convolutional recurrent sparse network (Dong et al. 2019), regression variant.

    Y. Dong, X. Yang, X. Zhao, J. Li, "Bidirectional convolutional recurrent sparse network (BCRSN): an
    efficient model for music emotion recognition", IEEE Trans. Multimedia 21(12), 3150-3163, 2019.
    DAMFF reference [9].

    Verified (abstract, keywords; DAMFF §2 and §4.4.3): a CNN replaces the connection between the input
    layer and the hidden layer of a bidirectional RNN (LSTM), learning "sequential-information-included
    affect-salient features" (SII-ASF) from the spectrogram; a sparse ASF-selection stage (keywords:
    Lasso regression); emotion predicted independently for each 0.5 s; the paper trains on a "weighted
    hybrid binary representation" (WHBR) of the V-A values, i.e. a weighted combination of binary
    classification problems.

    Realisation: an LSTM's input-to-hidden map is ``W_ih x_t``; with ``x_t = CNN(segment_t)`` followed by
    the linear ASF layer, ``W_ih . ASF . CNN`` *is* a convolutional input-to-hidden connection, so
    CNN -> ASF -> BiLSTM is that architecture, with the recurrent hidden-to-hidden connections intact.

    Simplified (documented): we could not verify the WHBR code layout (bit widths, weights), so the head is
    a plain per-segment regression to (valence, arousal) trained with the protocol's loss. The sparsity
    is an L1 (Lasso) penalty on the ASF-selection weights, returned by :meth:`auxiliary_loss`; a trainer
    adds it to the loss (it is zero when ``l1 = 0``).

    Chosen: CNN of ``len(channels)`` blocks (3x3 conv -> BN -> ReLU -> 2x2 max-pool; 32, 64, 128 channels),
    global mean + max pooling, ASF layer 256 units with ReLU, one bidirectional LSTM layer of 128 units per
    direction, linear output.

    Parameters
    ----------
    n_mels, segment_frames, width
        As in :class:`CRNN`.
    channels : sequence of int
        Conv channels per block at ``width=1``.
    kernel_size : int
    asf_dim : int
        Units of the sparse affect-salient-feature selection layer at ``width=1``.
    rnn_hidden, rnn_layers : int
        BiLSTM units per direction (at ``width=1``) and layers.
    dropout : float
    l1 : float
        Weight of the L1 penalty on the ASF layer (:meth:`auxiliary_loss`).
    """

    arg_settings = {
        "n_mels": N_MELS,
        "segment_frames": SEGMENT_FRAMES,
        "width": WIDTH,
        "channels": integer_list(1, 4096, max_len=LAYERS_MAX),
        "kernel_size": KERNEL,
        "asf_dim": UNITS,
        "rnn_hidden": UNITS,
        "rnn_layers": LAYERS,
        "dropout": DROPOUT,
        "l1": number(0, 1000),
    }

    def __init__(
        self,
        *,
        n_mels: int = 128,
        segment_frames: int = 50,
        width: float = 1.0,
        channels: Sequence[int] = (32, 64, 128),
        kernel_size: int = 3,
        asf_dim: int = 256,
        rnn_hidden: int = 128,
        rnn_layers: int = 1,
        dropout: float = 0.3,
        l1: float = 1e-5,
    ):
        super().__init__()
        check_width(width)
        if 2 ** len(channels) > min(segment_frames, n_mels):
            raise ValueError(
                f"bcrsn: {len(channels)} 2x2 poolings do not fit a {segment_frames}x{n_mels} segment"
            )
        self.n_mels = n_mels
        self.segment_frames = segment_frames
        self.l1 = float(l1)
        self.norm = InputNorm(n_mels)
        chans = [scaled_width(c, width) for c in channels]
        self.cnn = spectral_cnn(chans, kernel_size)
        self.asf = nn.Linear(2 * chans[-1], scaled_width(asf_dim, width))
        self.embed_dim = self.asf.out_features
        self.drop = nn.Dropout(dropout)
        self.head = BiLSTMRegressor(
            self.embed_dim, scaled_width(rnn_hidden, width), 2, num_layers=rnn_layers, dropout=dropout
        )

    def _embed(self, seg: torch.Tensor) -> torch.Tensor:
        h = global_meanmax(self.cnn(seg))  # (n, 2C)
        return torch.relu(self.asf(h))  # (n, asf_dim): SII-ASF

    def sequence_head(self, emb: torch.Tensor) -> torch.Tensor:
        """``(batch, n_segments, asf_dim)`` -> ``(batch, n_segments, 2)``."""
        return self.head(self.drop(emb))

    def auxiliary_loss(self) -> torch.Tensor:
        """Lasso penalty ``l1 * sum |W_asf|`` that makes the ASF selection sparse (add it to the loss)."""
        return self.l1 * self.asf.weight.abs().sum()
