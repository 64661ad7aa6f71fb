"""CRNN (Malik et al. 2017), one of DAMFF's Table 2 comparisons; see :mod:`moodscope.models.sequence`."""

from __future__ import annotations

import torch
from torch import nn

from ..config import flag, integer
from .base import DROPOUT, KERNEL, LAYERS, N_MELS, SEGMENT_FRAMES, UNITS, WIDTH, InputNorm, register_model
from .blocks import ConvBNReLUPool
from .sequence import SegmentSequenceModel, check_width, scaled_width


# --------------------------------------------------------------------------------------------------------
@register_model("crnn")
class CRNN(SegmentSequenceModel):
    """Stacked convolutional and recurrent network with separate V and A branches (Malik et al. 2017).

    M. Malik, S. Adavanne, K. Drossos, T. Virtanen, D. Ticha, R. Jarina, "Stacked convolutional and
    recurrent neural networks for music emotion recognition", Proc. SMC 2017, pp. 208-213
    (arXiv:1706.02292). DAMFF reference [16].

    Verified (abstract; DAMFF §2): a convolutional front end -- "one CNN layer" -- "followed by two
    branches of RNNs trained separately for arousal and valence"; evaluated on MediaEval 2015 (DEAM)
    dynamic V-A, RMSE 0.202 (A) / 0.268 (V); designed to have far fewer parameters than the BLSTM
    state of the art.

    Chosen (not verifiable from what we had):

    - Input is our 128-band log-Mel (DAMFF reproduced every baseline on its own features).
    - Front end: ``n_conv_layers`` (default 1, per the abstract) blocks of 3x3 conv -> BN -> ReLU ->
      max-pool over frequency by ``freq_pool`` (8), applied to each 0.5 s segment; then max over the
      segment's 50 frames, flattened to ``channels * (n_mels // freq_pool**n_conv_layers)`` features.
      The paper's convolution runs over the whole sequence; confining it to one segment is our choice
      (enables embedding reuse; a 3x3 kernel only loses one frame of context at each border).
    - Recurrent branches: GRUs (the usual choice of this group's CRNNs; the abstract says only "RNN"),
      ``rnn_layers`` = 2 stacked, bidirectional, ``rnn_hidden`` = 64 units per direction, each with its
      own linear output. The branches share the front end and are trained jointly (the sum of the
      per-dimension losses gives each branch exactly its own gradient; only the shared conv layer sees
      both). Linear outputs, no output squashing.

    Parameters
    ----------
    n_mels : int
    segment_frames : int
        Frames per 0.5 s segment (50 at 100 frames/s).
    width : float
        Multiplier of conv channels and recurrent units.
    channels : int
        Conv channels at ``width=1``.
    n_conv_layers : int
    kernel_size : int
    freq_pool : int
        Frequency max-pooling factor of each conv block.
    rnn_hidden : int
        GRU units per direction at ``width=1``.
    rnn_layers : int
    bidirectional : bool
    dropout : float
        Before each branch's GRU stack and its output layer.
    """

    arg_settings = {
        "n_mels": N_MELS,
        "segment_frames": SEGMENT_FRAMES,
        "width": WIDTH,
        "channels": UNITS,
        "n_conv_layers": LAYERS,
        "kernel_size": KERNEL,
        "freq_pool": integer(1, 128),
        "rnn_hidden": UNITS,
        "rnn_layers": LAYERS,
        "bidirectional": flag(),
        "dropout": DROPOUT,
    }

    def __init__(
        self,
        *,
        n_mels: int = 128,
        segment_frames: int = 50,
        width: float = 1.0,
        channels: int = 64,
        n_conv_layers: int = 1,
        kernel_size: int = 3,
        freq_pool: int = 8,
        rnn_hidden: int = 64,
        rnn_layers: int = 2,
        bidirectional: bool = True,
        dropout: float = 0.25,
    ):
        super().__init__()
        check_width(width)
        self.n_mels = n_mels
        self.segment_frames = segment_frames
        self.norm = InputNorm(n_mels)
        c = scaled_width(channels, width)
        blocks, c_in, f = [], 1, n_mels
        for _ in range(n_conv_layers):
            blocks.append(ConvBNReLUPool(c_in, c, kernel_size, pool=(1, freq_pool)))
            c_in, f = c, f // freq_pool
        if f < 1:
            raise ValueError(
                f"crnn: {n_conv_layers} x freq_pool {freq_pool} leaves no frequency bins of {n_mels}"
            )
        self.frontend = nn.Sequential(*blocks)
        self.embed_dim = c * f
        h = scaled_width(rnn_hidden, width)
        n_dir = 2 if bidirectional else 1
        self.drop = nn.Dropout(dropout)
        self.rnn = nn.ModuleDict(
            {
                k: nn.GRU(
                    self.embed_dim,
                    h,
                    num_layers=rnn_layers,
                    batch_first=True,
                    bidirectional=bidirectional,
                    dropout=dropout if rnn_layers > 1 else 0.0,
                )
                for k in ("valence", "arousal")
            }
        )
        self.out = nn.ModuleDict({k: nn.Linear(n_dir * h, 1) for k in ("valence", "arousal")})

    def _embed(self, seg: torch.Tensor) -> torch.Tensor:
        h = self.frontend(seg)  # (n, C, segment_frames, F')
        return h.amax(dim=2).flatten(1)  # (n, C * F'): max over the segment's frames

    def sequence_head(self, emb: torch.Tensor) -> torch.Tensor:
        """``(batch, n_segments, embed_dim)`` -> ``(batch, n_segments, 2)``: one GRU branch per dimension."""
        emb = self.drop(emb)
        outs = []
        for k in ("valence", "arousal"):
            h, _ = self.rnn[k](emb)  # (batch, n_seg, n_dir * hidden)
            outs.append(self.out[k](self.drop(h)))  # (batch, n_seg, 1)
        return torch.cat(outs, dim=-1)  # (batch, n_seg, 2) in (valence, arousal) order
