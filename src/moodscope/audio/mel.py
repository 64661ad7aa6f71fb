"""The log-Mel spectrogram (the papers' settings; MusiCNN's input): filterbank, STFT in blocks, compression.

Below the networks (``moodscope.models``: the multi-view CRNN computes its spectral view with :class:`LogMel`) and
below :mod:`moodscope.audio.features`, which computes features of whole tracks and files with it.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

from ..config import FeatureConfig

DEFAULT_FEATURES = FeatureConfig()  # the papers' settings (immutable, so safe as a default argument)


#: Elements of the complex STFT computed per block inside :func:`log_mel_spectrogram` (bounds memory).
_BLOCK_ELEMENTS = 1 << 21


#: Slaney's mel scale (Auditory Toolbox): linear below 1 kHz (200/3 Hz per mel), logarithmic above it with
#: 27 mels per factor of 6.4 -- the scale of librosa's default (``htk=False``) filterbank.
_MEL_F_SP = 200.0 / 3


_MEL_BREAK_HZ = 1000.0


_MEL_BREAK = _MEL_BREAK_HZ / _MEL_F_SP


_MEL_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(f) -> np.ndarray:
    """Hz -> mel on Slaney's scale (float64)."""
    f = np.asarray(f, dtype=np.float64)
    log_part = _MEL_BREAK + np.log(np.maximum(f, _MEL_BREAK_HZ) / _MEL_BREAK_HZ) / _MEL_LOGSTEP
    return np.where(f >= _MEL_BREAK_HZ, log_part, f / _MEL_F_SP)


def mel_to_hz(m) -> np.ndarray:
    """Mel on Slaney's scale -> Hz (float64); the inverse of :func:`hz_to_mel`."""
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= _MEL_BREAK, _MEL_BREAK_HZ * np.exp(_MEL_LOGSTEP * (m - _MEL_BREAK)), _MEL_F_SP * m)


@functools.lru_cache(maxsize=16)
def mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Slaney-normalised triangular mel filterbank, ``(n_mels, 1 + n_fft // 2)`` float32, read-only.

    ``n_mels + 2`` points equally spaced on :func:`hz_to_mel` between ``fmin`` and ``fmax`` (default
    ``sr / 2``) give the triangles' feet and peaks; filter ``i`` rises from point ``i`` to ``i + 1`` and
    falls to ``i + 2`` over the FFT bin frequencies, and is scaled by ``2 / (f[i + 2] - f[i])`` so every
    filter has the same area in Hz (Slaney's normalisation). This is the matrix of
    ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)``, bit for bit (tested);
    it is computed here so that predicting does not import librosa, whose first filterbank call costs
    about 3 s of start-up.
    """
    fmax = sr / 2.0 if fmax is None else float(fmax)
    bins = np.fft.rfftfreq(n_fft, d=1.0 / sr)  # the FFT bin frequencies, k * sr / n_fft
    f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    width = np.diff(f)  # (n_mels + 1,)
    dist = f[:, None] - bins[None, :]  # (n_mels + 2, bins)
    rise = -dist[:-2] / width[:-1, None]
    fall = dist[2:] / width[1:, None]
    # (triangles rounded to float32 before the area scaling, in that order, give librosa's matrix bit for bit)
    basis = np.maximum(0.0, np.minimum(rise, fall)).astype(np.float32)
    basis *= (2.0 / (f[2:] - f[:-2]))[:, None]
    basis.flags.writeable = False
    return basis


def mel_filterbank(config: FeatureConfig = DEFAULT_FEATURES) -> np.ndarray:
    """The Slaney mel filterbank (:func:`mel_basis`, librosa's matrix) for ``config``, built once per setting.

    Returns
    -------
    np.ndarray [shape=(n_mels, 1 + n_fft // 2), dtype=float32], read-only
    """
    return mel_basis(config.sr, config.n_fft, config.n_mels, float(config.fmin), config.fmax)


def log_mel_spectrogram(
    y: torch.Tensor,
    *,
    window: torch.Tensor,
    mel_basis: torch.Tensor,
    hop_length: int,
    center: bool = True,
    power: float = 2.0,
    amin: float = 1e-10,
    top_db: float | None = None,
    compression: str = "db",
) -> torch.Tensor:
    """Log-power mel spectrogram in dB; the computation behind :class:`LogMel`.

    Parameters
    ----------
    y : torch.Tensor [shape=(..., samples)]
        Waveform(s). Computation happens in ``window.dtype`` on ``window.device``.
    window : torch.Tensor [shape=(n_fft,)]
        Analysis window (its length is ``n_fft``).
    mel_basis : torch.Tensor [shape=(n_mels, 1 + n_fft // 2)]
    hop_length : int
    center : bool
        Pad ``n_fft // 2`` zeros at both ends so that frame ``t`` is centred on sample ``t * hop_length``
        (librosa's default ``pad_mode="constant"``). With ``False``, frame ``t`` starts at that sample.
    power : float
        Exponent of the magnitude (2 = power).
    amin : float
        Floor before the logarithm: ``10 * log10(max(amin, S))`` (``ref=1``).
    top_db : float, optional
        If given, clip each item to ``max - top_db`` (librosa's ``power_to_db`` rule, per item).
    compression : str
        ``"db"`` (the above) or ``"musicnn"``: ``log10(1 + 10000 * S)`` of the mel power (``amin`` and
        ``top_db`` unused), the input of the MusiCNN networks.

    Returns
    -------
    torch.Tensor [shape=(..., frames, n_mels), dtype=float32]
        ``frames = 1 + samples // hop_length`` with ``center``, else ``1 + (samples - n_fft) // hop_length``.
    """
    n_fft = window.shape[-1]
    lead = y.shape[:-1]
    x = y.reshape(-1, y.shape[-1]).to(device=window.device, dtype=window.dtype)  # (batch, samples)
    if center:
        x = torch.nn.functional.pad(x, (n_fft // 2, n_fft // 2))
    if x.shape[-1] < n_fft:
        raise ValueError(
            f"signal of {y.shape[-1]} samples is shorter than one window ({n_fft}) with center=False"
        )
    n_frames = 1 + (x.shape[-1] - n_fft) // hop_length
    n_freq = n_fft // 2 + 1
    block = max(1, _BLOCK_ELEMENTS // (x.shape[0] * n_freq))
    blocks = []
    for t0 in range(0, n_frames, block):
        t1 = min(n_frames, t0 + block)
        seg = x[:, t0 * hop_length : (t1 - 1) * hop_length + n_fft]
        spec = torch.stft(seg, n_fft, hop_length, window=window, center=False, return_complex=True)
        if power == 2.0:
            mag = spec.real.square() + spec.imag.square()  # (batch, n_freq, t), cheaper than abs() ** 2
        else:
            mag = spec.abs() ** power
        mel = torch.matmul(mel_basis, mag)  # (batch, n_mels, t)
        if compression == "musicnn":
            blocks.append(torch.log10(1.0 + 10000.0 * mel).transpose(-1, -2))
        else:
            blocks.append((10.0 * torch.log10(torch.clamp(mel, min=amin))).transpose(-1, -2))
    db = torch.cat(blocks, dim=1)  # (batch, frames, n_mels)
    if top_db is not None and compression == "db":
        peak = db.amax(dim=(-2, -1), keepdim=True)
        db = torch.maximum(db, peak - top_db)
    return db.to(torch.float32).reshape(*lead, n_frames, mel_basis.shape[0])


class LogMel(nn.Module):
    """Waveform to log-Mel (dB), batched, on any device: a thin module over :func:`log_mel_spectrogram`.

    Parameters
    ----------
    config : FeatureConfig
        Must have ``kind="logmel"``.
    dtype : torch.dtype
        Precision of the STFT and mel projection. float64 (default) keeps every bin, quiet ones
        included, within 1e-3 dB of librosa; float32 is faster on GPUs (typically within 1e-4 dB on
        music, but quiet bins next to loud ones can drift further).

    Examples
    --------
    >>> logmel = LogMel(FeatureConfig())
    >>> logmel(torch.zeros(2, 44100)).shape
    torch.Size([2, 101, 128])
    """

    def __init__(self, config: FeatureConfig = DEFAULT_FEATURES, *, dtype: torch.dtype = torch.float64):
        super().__init__()
        if config.kind != "logmel":
            raise ValueError(f"LogMel needs a FeatureConfig with kind='logmel', not {config.kind!r}")
        self.config = config
        window = torch.hann_window(
            config.n_fft, periodic=True, dtype=dtype
        )  # librosa's 'hann' (fftbins=True)
        self.register_buffer("window", window, persistent=False)
        basis = torch.from_numpy(np.array(mel_filterbank(config))).to(dtype)
        self.register_buffer("mel_basis", basis, persistent=False)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, samples)`` to ``(batch, frames, n_mels)``, or ``(samples,)`` to ``(frames, n_mels)``.

        Output is float32 log-power in dB; ``frames = 1 + samples // hop_length`` (``center=True``).
        """
        c = self.config
        return log_mel_spectrogram(
            y,
            window=self.window,
            mel_basis=self.mel_basis,
            hop_length=c.hop_length,
            center=c.center,
            power=c.power,
            amin=c.amin,
            top_db=c.top_db,
            compression=c.compression,
        )

    def extra_repr(self) -> str:
        c = self.config
        return f"sr={c.sr}, n_fft={c.n_fft}, hop_length={c.hop_length}, n_mels={c.n_mels}, dtype={self.window.dtype}"
