"""The dynamic V-A models DAMFF is compared against in its Table 2 (DAMFF §4.4.3).

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

import numpy as np
import torch
from torch import nn

from ..audio.features import mel_basis
from ..config import SEGMENT_S
from .base import InputNorm, MoodModel, register_model
from .blocks import BiLSTMRegressor, ConvBNReLUPool

__all__ = ["BCRSN", "CRNN", "DNNRaw", "MCRNN", "LogMel"]


def _scaled(n: int, width: float) -> int:
    """``n`` channels or units scaled by the width multiplier (at least 2)."""
    return max(2, int(round(n * width)))


def _check_width(width: float) -> None:
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")


class _SegmentSequenceModel(MoodModel):
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


class _WaveformFrontEnd(nn.Module):
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


def _spectral_cnn(channels: Sequence[int], kernel_size: int) -> nn.Sequential:
    """``ConvBNReLUPool`` blocks with 2x2 max pooling, starting from one input channel."""
    chans = [1, *channels]
    return nn.Sequential(*[ConvBNReLUPool(a, b, kernel_size, pool=2) for a, b in zip(chans[:-1], chans[1:])])


def _global_meanmax(h: torch.Tensor) -> torch.Tensor:
    """``(n, C, T, F)`` -> ``(n, 2C)``: mean and max over time and frequency."""
    h = h.flatten(2)  # (n, C, T*F)
    return torch.cat([h.mean(-1), h.amax(-1)], dim=1)  # (n, 2C)


# --------------------------------------------------------------------------------------------------------
@register_model("crnn")
class CRNN(_SegmentSequenceModel):
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
        _check_width(width)
        self.n_mels = n_mels
        self.segment_frames = segment_frames
        self.norm = InputNorm(n_mels)
        c = _scaled(channels, width)
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
        h = _scaled(rnn_hidden, width)
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


# --------------------------------------------------------------------------------------------------------
@register_model("bcrsn")
class BCRSN(_SegmentSequenceModel):
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
        _check_width(width)
        if 2 ** len(channels) > min(segment_frames, n_mels):
            raise ValueError(
                f"bcrsn: {len(channels)} 2x2 poolings do not fit a {segment_frames}x{n_mels} segment"
            )
        self.n_mels = n_mels
        self.segment_frames = segment_frames
        self.l1 = float(l1)
        self.norm = InputNorm(n_mels)
        chans = [_scaled(c, width) for c in channels]
        self.cnn = _spectral_cnn(chans, kernel_size)
        self.asf = nn.Linear(2 * chans[-1], _scaled(asf_dim, width))
        self.embed_dim = self.asf.out_features
        self.drop = nn.Dropout(dropout)
        self.head = BiLSTMRegressor(
            self.embed_dim, _scaled(rnn_hidden, width), 2, num_layers=rnn_layers, dropout=dropout
        )

    def _embed(self, seg: torch.Tensor) -> torch.Tensor:
        h = _global_meanmax(self.cnn(seg))  # (n, 2C)
        return torch.relu(self.asf(h))  # (n, asf_dim): SII-ASF

    def sequence_head(self, emb: torch.Tensor) -> torch.Tensor:
        """``(batch, n_segments, asf_dim)`` -> ``(batch, n_segments, 2)``."""
        return self.head(self.drop(emb))

    def auxiliary_loss(self) -> torch.Tensor:
        """Lasso penalty ``l1 * sum |W_asf|`` that makes the ASF selection sparse (add it to the loss)."""
        return self.l1 * self.asf.weight.abs().sum()


# --------------------------------------------------------------------------------------------------------
@register_model("dnn_raw")
class DNNRaw(_SegmentSequenceModel):
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
        _check_width(width)
        self.sr = int(sr)
        self.n_mels = 1
        self.segment_frames = int(round(SEGMENT_S * self.sr))
        self.norm = InputNorm(1)
        self.norm.set_stats(torch.zeros(1), torch.ones(1))  # identity until the trainer sets the stats
        self.frontend = _WaveformFrontEnd(self.sr, [_scaled(c, width) for c in channels])
        self.embed_dim = self.frontend.out_dim
        h = _scaled(rnn_hidden, width)
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


# --------------------------------------------------------------------------------------------------------
class LogMel(nn.Module):
    """Log-Mel spectrogram in torch: power STFT -> Slaney mel filterbank (librosa's matrix) -> dB.

    Matches ``librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft,
    hop_length=hop_length, n_mels=n_mels, center=True, pad_mode="constant", power=2), ref=1, amin=amin,
    top_db=None)``. Window and filterbank are non-persistent buffers (derived from the arguments).

    Shape: ``(n, samples)`` -> ``(n, frames, n_mels)`` with ``frames = 1 + samples // hop_length``.
    """

    def __init__(self, *, sr: int, n_fft: int, hop_length: int, n_mels: int, amin: float = 1e-10):
        super().__init__()
        self.n_fft, self.hop_length, self.amin = n_fft, hop_length, amin
        fb = mel_basis(sr, n_fft, n_mels)  # (n_mels, 1 + n_fft // 2), Slaney, as librosa.filters.mel
        self.register_buffer("fb", torch.from_numpy(np.ascontiguousarray(fb.T)).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(
            y,
            self.n_fft,
            hop_length=self.hop_length,
            window=self.window.to(y.dtype),
            center=True,
            pad_mode="constant",
            return_complex=True,
        )  # (n, 1 + n_fft // 2, frames)
        power = spec.real.square() + spec.imag.square()
        mel = power.transpose(1, 2) @ self.fb.to(y.dtype)  # (n, frames, n_mels)
        return 10.0 * torch.log10(mel.clamp_min(self.amin))


@register_model("mcrnn")
class MCRNN(_SegmentSequenceModel):
    """Multi-view convolutional recurrent network on raw audio (He & Ferguson 2020).

    N. He, S. Ferguson, "Multi-view neural networks for raw audio-based music emotion recognition",
    Proc. IEEE ISM 2020, pp. 168-172 (doi:10.1109/ISM.2020.00037). DAMFF reference [18].

    Verified (abstract): end-to-end regression from the raw audio signal; "multi-view convolutional
    neural networks as feature extractors"; "the extracted feature vectors are merged and fed into two
    layers of Bidirectional Long Short-Term Memory"; dynamic V-A on DEAM (reported with R2); data
    augmentation during training (a trainer concern, not part of the model).

    Chosen: the two views are the ones the issue names -- the waveform itself and a log-Mel spectrogram
    computed *inside* the model from the same waveform (so the model's input stays the raw signal):

    - waveform view: as :class:`DNNRaw`'s front end (25 ms / 10 ms learnable filterbank, 64 filters, then
      conv blocks of 128, 128 channels), global mean + max pooling;
    - spectral view: :class:`LogMel` (60 ms window, 10 ms hop, 64 mel bands at 16 kHz; per segment, zero
      padded at its borders), per-band batch normalisation, three 3x3 conv blocks (32, 64, 128; BN,
      ReLU, 2x2 max-pool), global mean + max pooling;
    - fusion by concatenation ("merged"), dropout, two BiLSTM layers of 128 units per direction, a
      linear layer per segment.

    Both views see one 0.5 s segment, so embeddings are reusable across sliding windows.

    Input: ``(batch, 1, samples, 1)`` waveform features at ``sr``.

    Parameters
    ----------
    sr : int
    width : float
    wave_channels, spec_channels : sequence of int
        Channels of the waveform and spectral views at ``width=1``.
    spec_mels : int
        Mel bands of the internal log-Mel (``n_mels``, the input feature width, is 1).
    win_s, hop_s : float
        STFT window and hop of the internal log-Mel, in seconds.
    rnn_hidden, rnn_layers : int
    dropout : float
    """

    feature_kind: ClassVar[str] = "waveform"
    default_sr: ClassVar[int] = 16000

    def __init__(
        self,
        *,
        sr: int = 16000,
        width: float = 1.0,
        wave_channels: Sequence[int] = (64, 128, 128),
        spec_channels: Sequence[int] = (32, 64, 128),
        spec_mels: int = 64,
        win_s: float = 0.060,
        hop_s: float = 0.010,
        rnn_hidden: int = 128,
        rnn_layers: int = 2,
        dropout: float = 0.3,
    ):
        super().__init__()
        _check_width(width)
        self.sr = int(sr)
        self.n_mels = 1
        self.segment_frames = int(round(SEGMENT_S * self.sr))
        self.norm = InputNorm(1)
        self.norm.set_stats(torch.zeros(1), torch.ones(1))  # identity until the trainer sets the stats
        self.wave = _WaveformFrontEnd(self.sr, [_scaled(c, width) for c in wave_channels])
        hop = max(1, int(round(hop_s * self.sr)))
        self.logmel = LogMel(sr=self.sr, n_fft=int(round(win_s * self.sr)), hop_length=hop, n_mels=spec_mels)
        n_frames = 1 + self.segment_frames // hop
        if 2 ** len(spec_channels) > min(n_frames, spec_mels):
            raise ValueError(
                f"mcrnn: {len(spec_channels)} 2x2 poolings do not fit {n_frames}x{spec_mels} log-Mel"
            )
        self.mel_bn = nn.BatchNorm1d(spec_mels)
        sc = [_scaled(c, width) for c in spec_channels]
        self.spec = _spectral_cnn(sc, 3)
        self.embed_dim = self.wave.out_dim + 2 * sc[-1]
        self.drop = nn.Dropout(dropout)
        self.head = BiLSTMRegressor(
            self.embed_dim, _scaled(rnn_hidden, width), 2, num_layers=rnn_layers, dropout=dropout
        )

    def _embed(self, seg: torch.Tensor) -> torch.Tensor:
        y = seg[:, :, :, 0]  # (n, 1, samples)
        e_wave = self.wave(y)  # (n, dw)
        s = self.logmel(y[:, 0])  # (n, frames, spec_mels) dB
        s = self.mel_bn(s.transpose(1, 2)).transpose(1, 2)  # per-band standardisation
        e_spec = _global_meanmax(self.spec(s.unsqueeze(1)))  # (n, 2C)
        return torch.cat([e_wave, e_spec], dim=1)  # (n, embed_dim): the merged views

    def sequence_head(self, emb: torch.Tensor) -> torch.Tensor:
        """``(batch, n_segments, embed_dim)`` -> ``(batch, n_segments, 2)``."""
        return self.head(self.drop(emb))
