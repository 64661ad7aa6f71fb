"""DAMFF: Dual Attention-based Multi-scale Feature Fusion for dynamic valence-arousal.

Zhang, Yang, Zhang, Luo, "Dual Attention-based Multi-scale Feature Fusion Approach for Dynamic Music
Emotion Recognition", ISMIR 2023 (``shared/papers/damff-ismir2023.txt``). Section numbers below refer
to that paper.

Pipeline for one window (§3, Fig. 1)::

    log-Mel dB (batch, 1, frames, 128) -> InputNorm -> cut into 0.5 s segments of 50 frames
      -> per segment: temporal-frequency multi-scale convolution (3 layers of parallel conv blocks, §3.1)
      -> Dual Attention Feature Fusion of the two layer-3 branches (§3.2)
      -> dimension reduction to a d-dim segment embedding (§3.3)
      -> BiLSTM over the window's segment embeddings -> linear layer -> (valence, arousal) per segment

Choices the paper leaves open (Figure 1 and Figure 4 are not in the text; every number here that is not
quoted from §3/§4.3 is ours):

- **Axes and kernel orientation.** Tensors are ``(batch, channels, time, freq)``; a kernel ``a x b`` spans
  ``a`` frames and ``b`` mel bands. §3.1 says "3x1 and 1x5 filters to capture features along the temporal
  and frequency axes": we read this in order, so 3x1 is the *temporal* filter (3 frames, 1 band) and 1x5
  the *frequency* filter (1 frame, 5 bands). (With Pons et al.'s frequency-by-time convention the roles
  would swap; the paper's own sentence order decides.) Square filters are 3x3 and 5x5.
- **Channels.** 64 channels at the fusion (§3.2.1). Layer 1 has 16 channels per branch and layer 2 has
  32 per branch (64 after the channel concatenation), so channels double per layer. ``width`` scales
  all three: ``max(4, round(c * width))``.
- **Pooling.** Every conv is followed by BN, ReLU and 2x2 max-pooling (§3.1 "after each convolutional
  layer"). A 50 x 128 segment becomes: layer 1, each branch 25 x 64, concatenated along time -> 50 x 64;
  layer 2: 25 x 32; layer 3: 12 x 16 (the odd 25 is floored). Padding is "same" everywhere.
- **Attention sizes.** Reduction ratio 4 in both attention branches (the AFF module the paper cites [36]
  uses 4); the spatial branch's point-wise ``Conv1d`` mixes the ``H*W = 192`` positions (see
  :class:`~moodscope.models.blocks.SpatialAttention` for why).
- **Dimension reduction (§3.3 "after reducing dimension").** The fused map ``Z`` (64, 12, 16) is averaged
  over its 12 time steps (time inside one 0.5 s segment), flattened to 64 x 16 = 1024 values -- frequency
  layout is kept, since register and brightness carry emotion -- and mapped by ``Linear -> ReLU ->
  Dropout`` to ``embed_dim`` (default 128).
- **Inference speed.** In eval mode each conv block folds its BN into the convolution, pools before the
  ReLU (they commute) and runs channels-last -- the same function, about twice as fast on CPU
  (:class:`~moodscope.models.blocks.ConvBNReLUPool`).
- **Sequence model.** One bidirectional LSTM layer, ``lstm_hidden`` = 128 units per direction, dropout
  ``dropout`` (default 0.2) before the LSTM and before the final linear layer. The output layer is linear
  (no tanh): labels live in [-1, 1] but the CCC loss (§4.3) prefers an unbounded output; clip downstream
  if needed.
- **Frames.** Any number of frames ``>= segment_frames`` is accepted; ``n_seg = frames // segment_frames``
  and a trailing partial segment is dropped (3001 frames -> 60 segments, the last frame ignored).
- **Architectures (Table 1, Fig. 4 not available).** Every variant keeps the three-layer structure
  (layer 1 concatenated along time, layer 2 along channels, layer 3 fused) and only changes kernels:

  ==========  ============================  ======================  ======================
  ``arch``    layer 1 (branches)            layer 2                 layer 3 (A, B)
  ==========  ============================  ======================  ======================
  hybrid      temporal 3x1, frequency 1x5   square 3x3, 5x5         square 3x3, 5x5
  tf          temporal 3x1, frequency 1x5   temporal 3x1, freq 1x5  temporal 3x1, freq 1x5
  square      square 3x3, 5x5               square 3x3, 5x5         square 3x3, 5x5
  ts          temporal 3x1, 5x1             square 3x3, 5x5         square 3x3, 5x5
  fs          frequency 1x3, 1x5            square 3x3, 5x5         square 3x3, 5x5
  ==========  ============================  ======================  ======================

  i.e. the name lists the filter types of layer 1 followed by those of layers 2-3 ("Hybrid" = temporal +
  frequency, then squares; "T-F" uses no squares at all; "Square" no elongated filters). Where a variant
  has a single filter type in a layer, its two parallel branches use two scales (3 and 5) of that type.
- **Fusion (Table 3).** ``fusion`` selects the full DAFF or an ablation, see
  :class:`~moodscope.models.blocks.AttentionFusion` ("w/o Fusion Strategy" feeds ``X' * X`` on).

Segment independence: each segment's embedding depends only on that segment's frames when BatchNorm is
in eval mode, which is what lets :mod:`moodscope.inference` embed every segment of a song once and re-run
only :meth:`DAMFF.sequence_head` per sliding window. In train mode BN uses batch statistics and embeddings
depend on the rest of the batch.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import choice
from .base import (
    DROPOUT,
    LAYERS,
    N_MELS,
    REDUCTION,
    SEGMENT_FRAMES,
    UNITS,
    WIDTH,
    InputNorm,
    MoodModel,
    register_model,
)
from .blocks import FUSION_MODES, AttentionFusion, BiLSTMRegressor, ConvBNReLUPool

__all__ = ["ARCHITECTURES", "DAMFF", "FUSION_MODES"]

_T3, _T5 = (3, 1), (5, 1)  # temporal filters (time x freq)
_F3, _F5 = (1, 3), (1, 5)  # frequency filters
_S3, _S5 = (3, 3), (5, 5)  # square filters

#: Kernel sizes ``(time, freq)`` of the two parallel branches of layers 1, 2 and 3 for each ``arch``.
ARCHITECTURES: dict[str, tuple[tuple[tuple[int, int], tuple[int, int]], ...]] = {
    "hybrid": ((_T3, _F5), (_S3, _S5), (_S3, _S5)),
    "tf": ((_T3, _F5), (_T3, _F5), (_T3, _F5)),
    "square": ((_S3, _S5), (_S3, _S5), (_S3, _S5)),
    "ts": ((_T3, _T5), (_S3, _S5), (_S3, _S5)),
    "fs": ((_F3, _F5), (_S3, _S5), (_S3, _S5)),
}

#: Channels per branch of layers 1, 2, 3 at ``width=1`` (64 at the fusion, §3.2.1).
BASE_CHANNELS = (16, 32, 64)


@register_model("damff")
class DAMFF(MoodModel):
    """DAMFF dynamic valence-arousal model (ISMIR 2023, §3); see the module docstring for every choice.

    Parameters
    ----------
    arch : str
        CNN architecture of Table 1: ``"hybrid"`` (default, the paper's model), ``"tf"``, ``"square"``,
        ``"ts"``, ``"fs"``.
    fusion : str
        ``"daff"`` (default) or a Table 3 ablation: ``"no_fusion"``, ``"no_channel"``, ``"no_spatial"``,
        ``"sum"`` (w/o DAFF).
    width : float
        Channel multiplier; 1.0 is the paper's size (64 channels at the fusion).
    embed_dim : int
        Size of the per-segment embedding fed to the BiLSTM.
    lstm_hidden : int
        BiLSTM units per direction.
    lstm_layers : int
    dropout : float
    attention_reduction : int
        Bottleneck ratio of both attention branches.
    n_mels : int
    segment_frames : int
        Frames per 0.5 s segment (50 at 100 frames/s).

    Shapes: ``forward`` ``(batch, 1, frames, n_mels)`` dB -> ``(batch, frames // segment_frames, 2)``.

    Examples
    --------
    >>> from moodscope.models import build
    >>> m = build("damff", width=0.25).eval()
    >>> m(torch.randn(2, 1, 3000, 128) * 20 - 40).shape
    torch.Size([2, 60, 2])
    """

    output = "dynamic"
    arg_settings = {
        "arch": choice(ARCHITECTURES),
        "fusion": choice(FUSION_MODES),
        "width": WIDTH,
        "embed_dim": UNITS,
        "lstm_hidden": UNITS,
        "lstm_layers": LAYERS,
        "dropout": DROPOUT,
        "attention_reduction": REDUCTION,
        "n_mels": N_MELS,
        "segment_frames": SEGMENT_FRAMES,
    }

    def __init__(
        self,
        *,
        arch: str = "hybrid",
        fusion: str = "daff",
        width: float = 1.0,
        embed_dim: int = 128,
        lstm_hidden: int = 128,
        lstm_layers: int = 1,
        dropout: float = 0.2,
        attention_reduction: int = 4,
        n_mels: int = 128,
        segment_frames: int = 50,
    ):
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown DAMFF arch {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
        if fusion not in FUSION_MODES:
            raise ValueError(f"unknown DAMFF fusion {fusion!r}; choose one of {', '.join(FUSION_MODES)}")
        if not width > 0:
            raise ValueError(f"width must be positive, got {width}")
        self.arch, self.fusion_mode = arch, fusion
        self.n_mels, self.segment_frames = int(n_mels), int(segment_frames)
        c1, c2, c3 = (max(4, round(c * width)) for c in BASE_CHANNELS)
        self.channels = (c1, c2, c3)
        (k1a, k1b), (k2a, k2b), (k3a, k3b) = ARCHITECTURES[arch]

        self.norm = InputNorm(n_mels)
        # §3.1 layer 1: two parallel blocks, outputs concatenated along time.
        # (channels_last_eval: the CNN runs channels-last at inference, ~2x faster on CPU; same numbers)
        self.conv1a = ConvBNReLUPool(1, c1, k1a, pool=2, channels_last_eval=True)
        self.conv1b = ConvBNReLUPool(1, c1, k1b, pool=2, channels_last_eval=True)
        # layer 2: concatenated along channels.
        self.conv2a = ConvBNReLUPool(c1, c2, k2a, pool=2)
        self.conv2b = ConvBNReLUPool(c1, c2, k2b, pool=2)
        # layer 3: A (3x3 in the hybrid) and B (5x5), fused by DAFF (§3.2).
        self.conv3a = ConvBNReLUPool(2 * c2, c3, k3a, pool=2)
        self.conv3b = ConvBNReLUPool(2 * c2, c3, k3b, pool=2)

        t, f = self.conv1a.out_size(self.segment_frames, self.n_mels)
        t, f = self.conv2a.out_size(2 * t, f)  # layer-1 concatenation doubles the time axis
        t, f = self.conv3a.out_size(t, f)
        if t < 1 or f < 1:
            raise ValueError(
                f"a segment of {segment_frames} frames x {n_mels} mels is too small for three 2x2 poolings"
            )
        self.fused_size = (t, f)  # (12, 16) at the defaults
        self.fusion = AttentionFusion(c3, t * f, mode=fusion, reduction=attention_reduction)

        # §3.3 dimension reduction: mean over the segment's time steps, keep (channels x freq).
        self.reduce = nn.Sequential(
            nn.Linear(c3 * f, embed_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        self.embed_dim = int(embed_dim)
        self.head = BiLSTMRegressor(embed_dim, lstm_hidden, 2, num_layers=lstm_layers, dropout=dropout)

    # ------------------------------------------------------------------ segments
    def n_segments(self, frames: int) -> int:
        """Number of whole segments in ``frames`` frames (a trailing partial segment is dropped)."""
        return frames // self.segment_frames

    def split_segments(self, x: torch.Tensor) -> torch.Tensor:
        """Cut windows into segments.

        ``(batch, 1, frames, n_mels)`` -> ``(batch * n_seg, 1, segment_frames, n_mels)``, segment-major
        within each window; trailing ``frames % segment_frames`` frames are dropped.
        """
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[3] != self.n_mels:
            raise ValueError(f"DAMFF expects (batch, 1, frames, {self.n_mels}), got {tuple(x.shape)}")
        b, _, frames, m = x.shape
        n_seg = self.n_segments(frames)
        if n_seg < 1:
            raise ValueError(f"DAMFF needs at least {self.segment_frames} frames (one segment), got {frames}")
        x = x[:, :, : n_seg * self.segment_frames]  # (batch, 1, n_seg * sf, M)
        return x.reshape(b * n_seg, 1, self.segment_frames, m)  # (batch * n_seg, 1, sf, M)

    # ------------------------------------------------------------------ parts
    def embed_segments(self, seg: torch.Tensor) -> torch.Tensor:
        """Embed 0.5 s segments independently (§3.1-3.3 up to the BiLSTM).

        Parameters
        ----------
        seg : torch.Tensor [shape=(n, 1, segment_frames, n_mels)]
            Log-Mel dB (un-normalised; :class:`InputNorm` is applied here).

        Returns
        -------
        torch.Tensor [shape=(n, embed_dim)]
        """
        if seg.dim() != 4 or tuple(seg.shape[1:]) != (1, self.segment_frames, self.n_mels):
            raise ValueError(
                f"embed_segments expects (n, 1, {self.segment_frames}, {self.n_mels}), got {tuple(seg.shape)}"
            )
        x = self.norm(seg)  # (n, 1, sf, M)
        x = torch.cat([self.conv1a(x), self.conv1b(x)], dim=2)  # (n, c1, 2 * (sf // 2), M // 2)
        x = torch.cat([self.conv2a(x), self.conv2b(x)], dim=1)  # (n, 2 * c2, sf // 2, M // 4)
        z = self.fusion(self.conv3a(x), self.conv3b(x))  # (n, c3, H, W) = (n, 64, 12, 16)
        z = z.mean(dim=2)  # (n, c3, W): average over the segment's time steps
        return self.reduce(z.flatten(1))  # (n, embed_dim)

    def sequence_head(self, emb: torch.Tensor) -> torch.Tensor:
        """BiLSTM + linear layer over segment embeddings (§3.3).

        ``(batch, n_seg, embed_dim)`` -> ``(batch, n_seg, 2)`` (valence, arousal).
        """
        return self.head(emb)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, frames, n_mels)`` dB -> ``(batch, frames // segment_frames, 2)`` (valence, arousal)."""
        b = x.shape[0]
        seg = self.split_segments(x)  # (batch * n_seg, 1, sf, M)
        emb = self.embed_segments(seg)  # (batch * n_seg, d)
        return self.sequence_head(emb.view(b, -1, emb.shape[-1]))  # (batch, n_seg, 2)
