"""Building blocks shared by the moodscope models.

- :class:`ConvBNReLUPool`: convolution, batch normalisation, ReLU, max-pooling (DAMFF §3.1).
- :class:`SEBlock`: squeeze-and-excitation channel re-weighting (Hu et al. 2018; used by ADFF §2.2.2).
- :class:`ChannelAttention` and :class:`SpatialAttention`: the two branches of DAMFF's Spatial Channel
  Attention Module (SCAM, DAMFF §3.2.1-3.2.2, eqs. (1) and (2)); :class:`SCAM` combines them (eq. (3)).
- :class:`AttentionFusion`: the attentional feature fusion of two branches (Dai et al. 2021, "AFF"),
  in DAMFF's form (§3.2.3, eq. (4)) and its ablations (Table 3).
- :class:`BiLSTMRegressor`: a bidirectional LSTM over a sequence followed by a per-step linear layer.

All 2-d blocks take and return ``(batch, channels, time, freq)`` tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "AttentionFusion",
    "BiLSTMRegressor",
    "ChannelAttention",
    "ConvBNReLUPool",
    "FUSION_MODES",
    "SCAM",
    "SEBlock",
    "SpatialAttention",
]


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class ConvBNReLUPool(nn.Module):
    """``Conv2d`` ("same" padding, no bias) -> ``BatchNorm2d`` -> ReLU -> ``MaxPool2d``.

    In eval mode the same function is computed faster: BN is folded into the convolution and the ReLU
    is applied after the pooling (equal up to float rounding).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (int, int)
        ``(time, freq)`` extent of the kernel. Odd sizes only, so that "same" padding is symmetric.
    pool : int or (int, int)
        ``(time, freq)`` max-pooling size and stride; ``1`` disables pooling. Pooling floors odd sizes.
    channels_last_eval : bool
        In eval mode, make the convolution output channels-last, so that this block's BN/ReLU/pooling
        and every following convolution run in that layout (oneDNN and cuDNN are about twice as fast
        with it at inference; in training the backward pass is slower with it, so train mode keeps the
        default layout). Numbers are unchanged. Useful on a first layer, whose one-channel input gives
        the backend no layout hint.

    Shape: ``(batch, in_channels, T, F)`` -> ``(batch, out_channels, T // pool_t, F // pool_f)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        *,
        pool: int | tuple[int, int] = 2,
        channels_last_eval: bool = False,
    ):
        super().__init__()
        k = _pair(kernel_size)
        self.channels_last_eval = channels_last_eval
        if k[0] % 2 == 0 or k[1] % 2 == 0:
            raise ValueError(f"kernel_size must be odd in both axes for 'same' padding, got {k}")
        self.pool_size = _pair(pool)
        self.conv = nn.Conv2d(in_channels, out_channels, k, padding=(k[0] // 2, k[1] // 2), bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(self.pool_size) if self.pool_size != (1, 1) else nn.Identity()

    def out_size(self, t: int, f: int) -> tuple[int, int]:
        """Output ``(time, freq)`` size for an input of size ``(t, f)``."""
        return t // self.pool_size[0], f // self.pool_size[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.pool(self.act(self.bn(self.conv(x))))
        # Eval: fold BN (running statistics) into the conv weights and bias, then pool *before* the ReLU
        # (max-pooling and ReLU commute, ReLU being monotonic): the same function with one pass less over
        # the largest tensor and a 4x smaller ReLU.
        bn = self.bn
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)  # (out,)
        w = self.conv.weight * scale.view(-1, 1, 1, 1)
        b = bn.bias - bn.running_mean * scale
        y = F.conv2d(x, w, b, padding=self.conv.padding)
        if self.channels_last_eval:
            y = y.contiguous(memory_format=torch.channels_last)
        return torch.relu_(self.pool(y))


class SEBlock(nn.Module):
    """Squeeze-and-excitation (Hu et al., CVPR 2018): ``x * sigmoid(W2 relu(W1 GAP(x)))``.

    Parameters
    ----------
    channels : int
    reduction : int
        Ratio of the bottleneck (16 in the SE paper).
    min_hidden : int
        Smallest bottleneck: the hidden size is ``max(min_hidden, channels // reduction)`` (ADFF uses 4, so
        narrow CPU-sized models keep a usable bottleneck).

    Shape: ``(batch, channels, *spatial)`` in and out (any number of spatial axes, including none).
    """

    def __init__(self, channels: int, *, reduction: int = 16, min_hidden: int = 1):
        super().__init__()
        hidden = max(min_hidden, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Channel weights in (0, 1), shape ``(batch, channels)``."""
        z = x.flatten(2).mean(-1) if x.dim() > 2 else x  # (batch, channels)
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(z))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weights(x)  # (batch, channels)
        return x * w.view(*w.shape, *([1] * (x.dim() - 2)))


class ChannelAttention(nn.Module):
    """Channel attention logits of DAMFF eq. (1): ``C = BN(Conv2(ReLU(BN(Conv1(GAP(X))))))``.

    ``Conv1``/``Conv2`` are point-wise (1x1) convolutions ``channels -> channels // reduction -> channels``
    (bias-free, each followed by BN as in the equation). The paper gives no ratio; we use
    ``reduction=4``, the value of the AFF module it builds on (Dai et al. 2021). No sigmoid here: eq. (3)
    applies it after adding the spatial map.

    Shape: ``(batch, C, H, W)`` -> ``(batch, C, 1, 1)``.
    """

    def __init__(self, channels: int, *, reduction: int = 4):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.net = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SpatialAttention(nn.Module):
    """Spatial attention logits of DAMFF eq. (2): ``S = BN(Conv1d_2(ReLU(BN(Conv1d_1(Pool1d(X))))))``.

    Reading of §3.2.2 (the text leaves the layout open): ``X`` (C, H, W) is *viewed* as
    ``S' in R^{(H*W) x C}``, i.e. a ``Conv1d`` input with ``H*W`` channels and length ``C``. ``Pool1d`` is
    global average pooling over that length -- the channel axis -- giving one value per position
    ``(H*W, 1)``. The two point-wise ``Conv1d`` then mix *positions* (``H*W -> H*W // reduction -> H*W``),
    exactly mirroring the channel attention with the roles of channels and positions swapped ("feature
    weights at distinct positions"). The result is viewed back as ``(1, H, W)``. This needs the map size
    ``H*W`` at construction (``n_positions``). The alternative CBAM-like reading (a 1 -> k -> 1 per-position
    map) would make every position's weight a function of its own channel mean only; we do not use it.

    Shape: ``(batch, C, H, W)`` with ``H * W == n_positions`` -> ``(batch, 1, H, W)``.
    """

    def __init__(self, n_positions: int, *, reduction: int = 4):
        super().__init__()
        hidden = max(1, n_positions // reduction)
        self.n_positions = n_positions
        self.net = nn.Sequential(
            nn.Conv1d(n_positions, hidden, 1, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv1d(hidden, n_positions, 1, bias=False),
            nn.BatchNorm1d(n_positions),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        if h * w != self.n_positions:
            raise ValueError(f"SpatialAttention built for {self.n_positions} positions, got {h}x{w}")
        s = x.flatten(2).transpose(1, 2)  # (batch, H*W, C): the view S'
        s = s.mean(dim=2, keepdim=True)  # (batch, H*W, 1): Pool1d along the channel axis
        s = self.net(s)  # (batch, H*W, 1)
        return s.view(b, 1, h, w)  # (batch, 1, H, W)


class SCAM(nn.Module):
    """Spatial Channel Attention Module (DAMFF §3.2, Fig. 2): ``X' = sigmoid(S + C)`` (eq. (3)).

    ``S`` (batch, 1, H, W) and ``C`` (batch, C, 1, 1) broadcast to ``(batch, C, H, W)``. Either branch can be
    switched off for the Table 3 ablations ("w/o Channel Attention": ``X' = sigmoid(S)``; "w/o Spatial
    Attention": ``X' = sigmoid(C)``); a switched-off branch has no parameters.

    Shape: ``(batch, C, H, W)`` -> attention weights in (0, 1), ``(batch, C|1, H|1, W|1)``.
    """

    def __init__(
        self,
        channels: int,
        n_positions: int,
        *,
        channel: bool = True,
        spatial: bool = True,
        reduction: int = 4,
    ):
        super().__init__()
        if not (channel or spatial):
            raise ValueError("SCAM needs at least one of the channel and spatial branches")
        self.channel = ChannelAttention(channels, reduction=reduction) if channel else None
        self.spatial = SpatialAttention(n_positions, reduction=reduction) if spatial else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = None
        if self.channel is not None:
            logits = self.channel(x)  # (batch, C, 1, 1)
        if self.spatial is not None:
            s = self.spatial(x)  # (batch, 1, H, W)
            logits = s if logits is None else logits + s  # (batch, C, H, W) by broadcasting
        return torch.sigmoid(logits)


#: Fusion modes of :class:`AttentionFusion` (DAMFF Table 3 rows).
FUSION_MODES = ("daff", "no_fusion", "no_channel", "no_spatial", "sum")


class AttentionFusion(nn.Module):
    """Dual Attention Feature Fusion of two equally shaped maps ``A`` and ``B`` (DAMFF §3.2, eq. (4)).

    ``X = A + B``; ``X' = SCAM(X)``; ``Z = X' * A + (1 - X') * B`` (the AFF scheme of Dai et al. 2021).

    Modes (Table 3):

    - ``"daff"``: the full module above.
    - ``"no_channel"`` / ``"no_spatial"``: SCAM without its channel / spatial branch, fusion as above.
    - ``"no_fusion"`` ("w/o Fusion Strategy: directly inputs the result of the SCAM module into BiLSTM"):
      the attention weights are applied to the summed input, ``Z = X' * X``. Feeding the weights
      ``X'`` alone would discard the features; ``X' * X`` is how SCAM-style modules output their result.
    - ``"sum"`` ("w/o DAFF"): ``Z = A + B``, no attention at all (no parameters).

    Shape: two ``(batch, C, H, W)`` tensors with ``H * W == n_positions`` -> ``(batch, C, H, W)``.
    """

    def __init__(self, channels: int, n_positions: int, *, mode: str = "daff", reduction: int = 4):
        super().__init__()
        if mode not in FUSION_MODES:
            raise ValueError(f"unknown fusion {mode!r}; choose one of {', '.join(FUSION_MODES)}")
        self.mode = mode
        self.scam = (
            None
            if mode == "sum"
            else SCAM(
                channels,
                n_positions,
                channel=mode != "no_channel",
                spatial=mode != "no_spatial",
                reduction=reduction,
            )
        )

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        x = a + b  # (batch, C, H, W)
        if self.scam is None:
            return x
        w = self.scam(x)  # (batch, C, H, W) weights in (0, 1)
        if self.mode == "no_fusion":
            return w * x
        return w * a + (1.0 - w) * b  # eq. (4); == b + w * (a - b)


class BiLSTMRegressor(nn.Module):
    """Bidirectional LSTM over a sequence, then a linear layer at every step.

    Parameters
    ----------
    in_features : int
    hidden_size : int
        Per direction; the linear layer sees ``2 * hidden_size`` features.
    n_out : int
    num_layers : int
    dropout : float
        Dropout before the linear layer (and between LSTM layers when ``num_layers > 1``).

    Shape: ``(batch, steps, in_features)`` -> ``(batch, steps, n_out)``.
    """

    def __init__(
        self,
        in_features: int,
        hidden_size: int,
        n_out: int,
        *,
        num_layers: int = 1,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.lstm = nn.LSTM(
            in_features,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * hidden_size, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(x)  # (batch, steps, 2 * hidden)
        return self.fc(self.drop(h))  # (batch, steps, n_out)
