"""MCRNN (He & Ferguson 2020), one of DAMFF's Table 2 comparisons; see :mod:`moodscope.models.sequence`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from ..audio.mel import LogMel
from ..config import SEGMENT_S, FeatureConfig, integer, integer_list, number
from .base import DROPOUT, LAYERS, LAYERS_MAX, UNITS, WIDTH, InputNorm, register_model
from .blocks import BiLSTMRegressor
from .sequence import (
    SegmentSequenceModel,
    WaveformFrontEnd,
    check_width,
    global_meanmax,
    scaled_width,
    spectral_cnn,
)

# --------------------------------------------------------------------------------------------------------


@register_model("mcrnn")
class MCRNN(SegmentSequenceModel):
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
    - spectral view: :class:`moodscope.audio.mel.LogMel` (60 ms window, 10 ms hop, 64 mel bands at 16 kHz; per segment, zero
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

    arg_settings = {
        "sr": integer(1000, 48000),
        "width": WIDTH,
        "wave_channels": integer_list(1, 4096, max_len=LAYERS_MAX),
        "spec_channels": integer_list(1, 4096, max_len=LAYERS_MAX),
        "spec_mels": integer(1, 256),
        "win_s": number(0.001, 0.25),
        "hop_s": number(0.001, 0.25),
        "rnn_hidden": UNITS,
        "rnn_layers": LAYERS,
        "dropout": DROPOUT,
    }

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
        check_width(width)
        self.sr = int(sr)
        self.n_mels = 1
        self.segment_frames = int(round(SEGMENT_S * self.sr))
        self.norm = InputNorm(1, mean=0.0, std=1.0)  # identity until the trainer sets the stats
        self.wave = WaveformFrontEnd(self.sr, [scaled_width(c, width) for c in wave_channels])
        hop = max(1, int(round(hop_s * self.sr)))
        # the feature front end's log-Mel (center, constant padding, no top_db), in float32 inside the model
        mel_cfg = FeatureConfig(
            sr=self.sr, n_fft=int(round(win_s * self.sr)), hop_length=hop, n_mels=spec_mels
        )
        # its window and filterbank are computed, never loaded (non-persistent buffers): always real, also in a
        # skeleton on the meta device (models.base.build_skeleton), where building them would be slow
        with torch.device("cpu"):
            self.logmel = LogMel(mel_cfg, dtype=torch.float32)
        n_frames = 1 + self.segment_frames // hop
        if 2 ** len(spec_channels) > min(n_frames, spec_mels):
            raise ValueError(
                f"mcrnn: {len(spec_channels)} 2x2 poolings do not fit {n_frames}x{spec_mels} log-Mel"
            )
        self.mel_bn = nn.BatchNorm1d(spec_mels)
        sc = [scaled_width(c, width) for c in spec_channels]
        self.spec = spectral_cnn(sc, 3)
        self.embed_dim = self.wave.out_dim + 2 * sc[-1]
        self.drop = nn.Dropout(dropout)
        self.head = BiLSTMRegressor(
            self.embed_dim, scaled_width(rnn_hidden, width), 2, num_layers=rnn_layers, dropout=dropout
        )

    def _embed(self, seg: torch.Tensor) -> torch.Tensor:
        y = seg[:, :, :, 0]  # (n, 1, samples)
        e_wave = self.wave(y)  # (n, dw)
        s = self.logmel(y[:, 0])  # (n, frames, spec_mels) dB
        s = self.mel_bn(s.transpose(1, 2)).transpose(1, 2)  # per-band standardisation
        e_spec = global_meanmax(self.spec(s.unsqueeze(1)))  # (n, 2C)
        return torch.cat([e_wave, e_spec], dim=1)  # (n, embed_dim): the merged views

    def sequence_head(self, emb: torch.Tensor) -> torch.Tensor:
        """``(batch, n_segments, embed_dim)`` -> ``(batch, n_segments, 2)``."""
        return self.head(self.drop(emb))
