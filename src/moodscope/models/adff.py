"""ADFF: attention-based deep feature fusion for static music emotion recognition.

Huang, Ji, Hu, Cai, Luo and Yang, "ADFF: Attention Based Deep Feature Fusion Approach for Music Emotion
Recognition", Interspeech 2022 (``shared/papers/adff-interspeech2022.txt``).

Pipeline (shapes for a batch of ``B`` inputs of ``F`` frames, ``K = seg_num``, ``L = F // K``)::

    x (B, 1, F, 128) --InputNorm--> --cut + stack (§2.1)--> (B, K, L, 128)
      --SFLM level 1..5 (§2.2.1)--> S_N (B, C_N, T_N, F_N),  T_N = ceil(L / 2^(N-1)), F_N = 128 / 2^(N-1)
      --TFLM_N: SE (eq. 2-4) + 2-layer BiLSTM over T_N (§2.2.2)--> E_N (B, 2 H)
      --concat E_1..E_5 (§2.3)--> (B, 10 H) --FC layers, FF layer, last FC--> (B, n_out)

Choices the paper leaves open (all are constructor arguments or documented here):

- **Cutting (§2.1)**: when ``F`` is not divisible by ``seg_num`` the last ``F mod seg_num`` frames are dropped;
  part ``k`` is frames ``[k L, (k + 1) L)`` and becomes channel ``k``.
- **SFLM levels (§2.2.1)**: VGG16's conv part, levels of 2, 2, 3, 3, 3 convs (3x3, padding 1) with 64, 128,
  256, 512, 512 channels times ``width``. Every conv keeps VGG's ReLU; the paper's "ReLU and BatchNorm at the end
  of each level" is the ReLU after the level's last conv (VGG already has it; a second ReLU would be a no-op)
  followed by an added ``BatchNorm2d``: level = ``(conv3x3 -> ReLU) x n -> BN``. Convs have biases (as VGG).
- **Pooling**: 2x2 max-pool *between* levels (4 pools; none after level 5, whose output S_5 feeds TFLM_5
  directly, so a pool there would only discard temporal resolution). ``ceil_mode=True`` so an axis of size 1
  stays 1: a 5 s input with ``seg_num=16`` (31 frames per channel) gives T_N = 31, 16, 8, 4, 2.
- **SE (eq. 2-4)**: squeeze = mean over (T_N, F_N) per channel; excitation = FC(C -> C/r) - ReLU -
  FC(C/r -> C) - sigmoid with reduction ``r = 16`` (Hu et al.'s default), hidden size ``max(C // r, 4)``
  (equals C / 16 at paper size, keeps >= 4 units in narrow variants); rescale = channel-wise product.
- **BiLSTM input**: each time step of S_N is its frequency axis average-pooled into ``freq_bands`` = 4 equal
  bands, flattened with the channels: ``(B, T_N, 4 C_N)``. ``freq_bands=1`` is the plain mean over frequency,
  ``(B, T_N, C_N)``. Four bands are the default because the mean discards where in frequency a pattern sits
  (register), which carries valence: on a toy task whose valence is the mel position of a spectral peak
  (width 0.125, 72 training clips, 25 epochs) held-out valence R² was 0.06 with the mean and 0.94 with four bands
  (arousal 0.97 / 0.94).
- **BiLSTM**: 2 layers, bidirectional, ``lstm_hidden`` units per direction (default ``round(128 * width)``,
  at least 8), no inter-layer dropout. **ESTF** E_N = mean over time of the top layer's outputs, ``(B, 2 H)``
  (``temporal_pool="mean"``; ``"last"`` concatenates the final forward and backward hidden states instead).
  The mean is used by default because level 1 has up to thousands of steps (2000 at 20 s, ``seg_num=1``) and
  the last state of such a long sequence trains poorly.
- **Prediction module (§2.3)**: "several FC layers" = ``fc_sizes`` (default ``(512, 256)`` times ``width``), each
  Linear - ReLU - Dropout(``dropout`` = 0.3); the "feed-forward layer" = Linear(-> ``ff_size``, default
  ``64 * width``) - ReLU; the last FC maps it to the task's outputs (sizes floored at 16). Regression outputs
  are linear (no tanh), so targets on [-1, 1] are not squashed.
- **Tasks**: ``"valence"``, ``"arousal"`` (1 output), ``"multitask"`` (2: valence, arousal), ``"binary"`` (4
  logits, two per dimension: valence negative/positive, arousal negative/positive; softmax + cross-entropy per
  pair), ``"quadrant"`` (4 logits). Classes by sign, :func:`moodscope.tasks.static.label_to_class`; losses and
  whole-track aggregation in :class:`moodscope.tasks.static.StaticTask` and :mod:`moodscope.tasks.static`.
- **Ablations (Table 1)**: ``use_se=False`` replaces every SE block by the identity (w/o SE).
  ``use_tflm=False`` removes the whole TFLM, SE blocks included (``use_se`` is then ignored): E_N is the global
  average pool of S_N over time and frequency, ``(B, C_N)`` (w/o TFLM).
- **Training** (§3.2, ``configs/adff_*.yaml``): Adam lr 1e-5, weight decay 1e-5, 200
  epochs, batch 32, step decay at [20, 45, 80, 110, 140, 170] with factor 0.5 (the paper gives no factor).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config import choice, flag, integer, integer_list
from .base import (
    DROPOUT,
    FC_MAX,
    N_MELS,
    REDUCTION,
    STATIC_HEADS,
    WIDTH,
    InputNorm,
    MoodModel,
    n_outputs,
    register_model,
)
from .blocks import SEBlock

__all__ = ["ADFF", "VGG16_LEVELS"]

#: VGG16's convolutional part by level: (number of 3x3 convs, output channels at width 1)
VGG16_LEVELS: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


def scaled_width(n: int, width: float, minimum: int = 1) -> int:
    return max(minimum, int(round(n * width)))


class _VGGLevel(nn.Module):
    """One SFLM level: ``(conv3x3 -> ReLU) x n_convs -> BatchNorm2d``. ``(B, c_in, T, F) -> (B, c_out, T, F)``."""

    def __init__(self, c_in: int, c_out: int, n_convs: int):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(n_convs):
            layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.BatchNorm2d(c_out))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _TFLM(nn.Module):
    """One level's temporal feature learning module: SE, then a 2-layer BiLSTM over time.

    ``(B, C, T, F) -> (B, 2 * hidden)`` (the level's ESTF).
    """

    def __init__(
        self, channels: int, hidden: int, *, use_se: bool, reduction: int, freq_bands: int, temporal_pool: str
    ):
        super().__init__()
        self.se = SEBlock(channels, reduction=reduction, min_hidden=4) if use_se else nn.Identity()
        self.freq_bands = freq_bands
        self.temporal_pool = temporal_pool
        self.lstm = nn.LSTM(channels * freq_bands, hidden, num_layers=2, batch_first=True, bidirectional=True)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        s = self.se(s)  # (B, C, T, F)
        if self.freq_bands == 1:
            seq = s.mean(dim=3).transpose(1, 2)  # (B, T, C)
        else:
            s = F.adaptive_avg_pool2d(s, (s.shape[2], self.freq_bands))  # (B, C, T, bands)
            seq = s.permute(0, 2, 1, 3).flatten(2)  # (B, T, C * bands)
        out, (h_n, _) = self.lstm(seq.contiguous())  # out (B, T, 2H); h_n (4, B, H)
        if self.temporal_pool == "mean":
            return out.mean(dim=1)  # (B, 2H)
        return torch.cat([h_n[-2], h_n[-1]], dim=1)  # (B, 2H): top layer, forward and backward


@register_model("adff")
class ADFF(MoodModel):
    """ADFF (Huang et al., Interspeech 2022): static valence-arousal regression or classification.

    Parameters
    ----------
    task : {"valence", "arousal", "multitask", "binary", "quadrant"}
        Output head (1, 1, 2, 4 or 4 outputs; see the module docstring).
    seg_num : int >= 1
        Number of time parts stacked as channels (§2.1; the paper uses 6).
    width : float > 0
        Channel multiplier of the VGG levels (1.0 = paper) and of the default LSTM/FC sizes.
    n_mels : int
        Mel bands of the input.
    lstm_hidden : int or None
        BiLSTM units per direction; ``None`` = ``round(128 * width)`` (at least 8).
    fc_sizes : sequence of int or None
        Hidden FC layers of the prediction module; ``None`` = ``(512, 256)`` times ``width`` (at least 16).
    ff_size : int or None
        Feed-forward layer size; ``None`` = ``64 * width`` (at least 16).
    dropout : float
        Dropout after each hidden FC layer.
    use_se, use_tflm : bool
        Table 1 ablations (``use_tflm=False`` removes SE and BiLSTM; E_N is then a global average pool).
    se_reduction : int
        SE reduction ratio r (eq. 3).
    freq_bands : int in 1..n_mels // 16
        Frequency bands kept per BiLSTM step (average-pooled; 1 = mean over frequency).
    temporal_pool : {"mean", "last"}
        How a level's BiLSTM outputs become its ESTF.

    Examples
    --------
    >>> from moodscope.models import build
    >>> m = build("adff", task="multitask", width=0.125)
    >>> m(torch.randn(2, 1, 500, 128) - 40).shape
    torch.Size([2, 2])
    """

    output = "static"
    arg_settings = {
        "task": choice(STATIC_HEADS),
        "seg_num": integer(1, 256),
        "width": WIDTH,
        "n_mels": N_MELS,
        "lstm_hidden": integer(1, 4096, none=True),
        "fc_sizes": integer_list(1, FC_MAX, min_len=0, max_len=16, none=True),
        "ff_size": integer(1, FC_MAX, none=True),
        "dropout": DROPOUT,
        "use_se": flag(),
        "use_tflm": flag(),
        "se_reduction": REDUCTION,
        "freq_bands": integer(1, 64),
        "temporal_pool": choice(("mean", "last")),
    }

    def __init__(
        self,
        task: str = "multitask",
        seg_num: int = 6,
        width: float = 1.0,
        n_mels: int = 128,
        lstm_hidden: int | None = None,
        fc_sizes: Sequence[int] | None = None,
        ff_size: int | None = None,
        dropout: float = 0.3,
        use_se: bool = True,
        use_tflm: bool = True,
        se_reduction: int = 16,
        freq_bands: int = 4,
        temporal_pool: str = "mean",
    ):
        super().__init__()
        if task not in STATIC_HEADS:
            raise ValueError(f"adff: unknown task {task!r}; known: {', '.join(STATIC_HEADS)}")
        if int(seg_num) != seg_num or seg_num < 1:
            raise ValueError(f"adff: seg_num must be a positive integer, got {seg_num!r}")
        if not width > 0:
            raise ValueError(f"adff: width must be positive, got {width!r}")
        if temporal_pool not in ("mean", "last"):
            raise ValueError(f"adff: temporal_pool must be 'mean' or 'last', got {temporal_pool!r}")
        if freq_bands < 1 or freq_bands > n_mels // 16:
            raise ValueError(f"adff: freq_bands must be in 1..{n_mels // 16}, got {freq_bands}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"adff: dropout must be in [0, 1), got {dropout}")
        self.task = task
        self.seg_num = int(seg_num)
        self.n_mels = n_mels
        self.use_tflm = use_tflm
        self.use_se = use_se and use_tflm
        hidden = lstm_hidden if lstm_hidden is not None else scaled_width(128, width, 8)
        fcs = (
            list(fc_sizes)
            if fc_sizes is not None
            else [scaled_width(512, width, 16), scaled_width(256, width, 16)]
        )
        ff = ff_size if ff_size is not None else scaled_width(64, width, 16)

        self.norm = InputNorm(n_mels)

        # SFLM (§2.2.1)
        chans = [scaled_width(c, width) for _, c in VGG16_LEVELS]
        c_in = self.seg_num
        self.sflm = nn.ModuleList()
        for (n_convs, _), c in zip(VGG16_LEVELS, chans):
            self.sflm.append(_VGGLevel(c_in, c, n_convs))
            c_in = c
        self.pool = nn.MaxPool2d(2, 2, ceil_mode=True)

        # TFLM (§2.2.2)
        if use_tflm:
            self.tflm = nn.ModuleList(
                _TFLM(
                    c,
                    hidden,
                    use_se=self.use_se,
                    reduction=se_reduction,
                    freq_bands=freq_bands,
                    temporal_pool=temporal_pool,
                )
                for c in chans
            )
            fused = 2 * hidden * len(chans)
        else:
            self.tflm = None
            fused = sum(chans)

        # Prediction module (§2.3)
        layers: list[nn.Module] = []
        d = fused
        for h in fcs:
            layers += [nn.Linear(d, h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            d = h
        layers += [nn.Linear(d, ff), nn.ReLU(inplace=True)]  # feed-forward layer
        self.head = nn.Sequential(*layers)
        self.out = nn.Linear(ff, n_outputs(task))

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """The data processing of §2.1: ``(B, 1, F, M) -> (B, seg_num, F // seg_num, M)``.

        Part ``k`` (frames ``[k L, (k + 1) L)``, ``L = F // seg_num``) becomes channel ``k``; the last
        ``F mod seg_num`` frames are dropped.
        """
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[3] != self.n_mels:
            raise ValueError(
                f"adff: input must have shape (batch, 1, frames, {self.n_mels}), got {tuple(x.shape)}"
            )
        b, _, n_frames, m = x.shape
        seg = n_frames // self.seg_num
        if seg < 1:
            raise ValueError(f"adff: input has {n_frames} frames, fewer than seg_num={self.seg_num}")
        return x[:, 0, : seg * self.seg_num].reshape(b, self.seg_num, seg, m)  # (B, K, L, M)

    def levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """SFLM outputs S_1..S_5 for normalised, stacked input ``(B, seg_num, L, M)``; S_N is ``(B, C_N, T_N, F_N)``."""
        outs = []
        for i, level in enumerate(self.sflm):
            if i > 0:
                x = self.pool(x)  # (B, C_{N-1}, ceil(T/2), ceil(F/2))
            x = level(x)  # (B, C_N, T_N, F_N)
            outs.append(x)
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(batch, 1, frames, n_mels)`` log-Mel dB -> ``(batch, n_outputs)`` values or logits."""
        x = self.split(self.norm(x))  # (B, K, L, M)
        s = self.levels(x)  # 5 x (B, C_N, T_N, F_N)
        if self.tflm is not None:
            e = [t(sn) for t, sn in zip(self.tflm, s)]  # 5 x (B, 2H)
        else:
            e = [sn.mean(dim=(2, 3)) for sn in s]  # 5 x (B, C_N)
        fused = torch.cat(e, dim=1)  # (B, sum of E_N sizes)
        return self.out(self.head(fused))  # (B, n_out)
