"""Log-Mel features (the papers' settings) from waveforms, in memory or streamed block by block from a file."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import SEGMENT_S, FeatureConfig
from ..errors import AudioError
from . import content
from .decode import (
    MIN_DURATION_S,
    SILENCE_THRESHOLD,
    RegionReader,
    audio_info,
    check_length,
    load_audio,
    progress_share,
)
from .loudness import LoudnessMeter, loudness_gain
from .tonal import mode_features

_DEFAULT = FeatureConfig()  # the papers' settings (immutable, so safe as a default argument)


_WAVEFORM = FeatureConfig(kind="waveform")


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


def mel_filterbank(config: FeatureConfig = _DEFAULT) -> np.ndarray:
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

    def __init__(self, config: FeatureConfig = _DEFAULT, *, dtype: torch.dtype = torch.float64):
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


class WaveformFeatures(nn.Module):
    """The ``kind="waveform"`` "features": ``(batch, samples)`` -> ``(batch, samples, 1)`` float32."""

    def __init__(self, config: FeatureConfig = _WAVEFORM):
        super().__init__()
        self.config = config

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y.to(torch.float32).unsqueeze(-1)


class MusicnnEmbedding(nn.Module):
    """The ``kind="musicnn"`` features: ``(samples,)`` at 16 kHz -> ``(steps, 250)``, one row per 0.5 s step.

    The log-Mel of the network's input (:meth:`FeatureConfig.input_config`), the frozen MSD-MusiCNN's
    front and mid end over the whole track, then its back end on the 187-frame (3 s) window centred on each
    step (:func:`moodscope.models.musicnn.window_starts`; windows at the ends are moved inside the track):
    row *i* describes ``[0.5 i, 0.5 (i + 1))`` s and holds the 200-unit embedding and the 50 tag logits.
    ``steps = samples // 8000`` (at least 1); a track shorter than 3 s is padded with silence (0 in this
    compression). With ``config.extras``, their columns follow (:func:`extra_features`).

    The front and mid end run over 32 s blocks with 128 frames (2 s) of context on each side: a frame's
    features depend on 72 frames before it and 73 after (the 128-frame temporal kernel and the mid end's
    three 7-frame ones), so memory stays bounded on long tracks and the result equals one pass (10 s of
    context, as before, only added a third more convolution work).
    """

    #: Frames per block of the front and mid end, and context added on each side of a block (>= 73).
    #: (Measured on a 2-core machine: 2000-frame blocks as fast as 3750 with PyTorch, faster with ONNX
    #: Runtime, and ONNX Runtime's peak memory 0.8 GB instead of 1.1 GB for a 3-minute track.)
    BLOCK, CONTEXT = 2000, 128

    def __init__(self, config: FeatureConfig):
        super().__init__()
        # imported here: the networks (moodscope.models) use this module's LogMel
        from ..models.musicnn import PATCH_FRAMES, load_musicnn, window_starts

        self.config = config
        self.logmel = LogMel(config.input_config(), dtype=torch.float32)
        self.net = load_musicnn("msd")
        self._patch, self._starts = PATCH_FRAMES, window_starts
        self._onnx = None  # the ONNX Runtime front end, made on first use on the CPU
        self._student = None  # the distilled front end (config.frontend "student"), loaded on first use

    def front_end(self, device) -> tuple[str, object]:
        """``(name, callable)`` computing the front and mid end on ``device``: ``"onnx"`` (ONNX Runtime) or
        ``"torch"``, as :func:`moodscope.models.musicnn_onnx.frontend_choice` says -- of the network itself
        or, with ``config.frontend == "student"``, of its distilled student."""
        from ..models.musicnn_onnx import OnnxFrameFeatures, frontend_choice

        net = self.net
        if self.config.frontend == "student":
            if self._student is None:
                from ..models.musicnn_student import load_student

                self._student = load_student(self.net).to(next(self.net.parameters()).device)
            net = self._student
        if frontend_choice(device) == "torch":
            return "torch", net.frame_features
        if self._onnx is None:
            self._onnx = OnnxFrameFeatures(net)
        return "onnx", self._onnx

    def _frame_features(self, mel: torch.Tensor) -> torch.Tensor:
        n = mel.shape[1]
        _, frame_features = self.front_end(mel.device)
        if n <= self.BLOCK + 2 * self.CONTEXT:
            return frame_features(mel)
        parts = []
        for a in range(0, n, self.BLOCK):
            lo, hi = max(0, a - self.CONTEXT), min(n, a + self.BLOCK + self.CONTEXT)
            out = frame_features(mel[:, lo:hi])
            parts.append(out[:, a - lo : a - lo + min(self.BLOCK, n - a)].transpose(1, 2))
        # joined with time contiguous, as one pass of frame_features gives them (the back end scans time)
        return torch.cat(parts, dim=2).transpose(1, 2)

    def gain(self, meter: LoudnessMeter, sum_squares: float) -> float:
        """The level change the features are computed at, from a track's :class:`LoudnessMeter` (at
        ``config.sr``) and its sum of squared samples: ``loudness_lufs``, then the ``level_db`` ceiling."""
        gain = meter.gain(self.config.loudness_lufs) if self.config.loudness_lufs is not None else 1.0
        if self.config.level_db is not None and meter.n:
            rms = gain * math.sqrt(sum_squares / meter.n)
            target = 10.0 ** (self.config.level_db / 20.0)
            if rms > target:  # louder tracks are brought down to the level; quieter ones are left as they are
                gain *= target / rms
        return gain

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if y.dim() != 1:
            raise ValueError(f"MusicnnEmbedding expects one mono waveform (samples,), got {tuple(y.shape)}")
        steps = max(1, y.shape[-1] // int(round(self.config.sr * SEGMENT_S)))
        if self.config.loudness_lufs is not None:
            gain = loudness_gain(y.detach().cpu().numpy(), self.config.sr, self.config.loudness_lufs)
            if gain != 1.0:
                y = y * gain
        if self.config.level_db is not None:
            rms = float(torch.sqrt(torch.mean(y.double() ** 2)))
            target = 10.0 ** (self.config.level_db / 20.0)
            if rms > target:  # louder tracks are brought down to the level; quieter ones are left as they are
                y = y * (target / rms)
        base = self.steps_of(y, start=0, first=0, stop=steps, n_total=y.shape[-1])
        if not self.config.extras:
            return base
        return torch.cat([base, extra_features(y.cpu().numpy(), self.config, steps).to(base)], dim=-1)

    def steps_of(self, y: torch.Tensor, *, start: int, first: int, stop: int, n_total: int) -> torch.Tensor:
        """Embedding and tag logits ``(stop - first, 250)`` of the track's 0.5 s steps ``[first, stop)`` from
        ``y``, the (level-adjusted) samples ``[start, start + len(y))`` of a track of ``n_total`` samples.

        The whole track (``start=0``, ``len(y) == n_total``) is :meth:`forward`'s case. A part of it gives the
        whole track's values within float rounding when ``start`` is on a frame (a multiple of
        ``hop_length``) and ``y`` holds, beside the steps, the context their 3 s patches and the convolutions
        see (beyond the track's ends the padding is the whole track's own)."""
        hop = self.config.hop_length
        if start % hop:
            raise ValueError(f"a part of a track must start on a frame (a multiple of {hop}), not at {start}")
        mel = self.logmel(y.to(self.logmel.window.device))[None]  # (1, frames, 96)
        if mel.shape[1] < self._patch:
            mel = torch.nn.functional.pad(mel, (0, 0, 0, self._patch - mel.shape[1]))
        feats = self._frame_features(mel)
        n_frames = max(self._patch, 1 + n_total // hop)  # the whole track's frames (centre-padded)
        starts = self._starts(n_frames, stop, fps=self.config.sr / hop, step_s=SEGMENT_S)[first:]
        local = [s - start // hop for s in starts]
        if local and (min(local) < 0 or max(local) > feats.shape[1] - self._patch):
            raise ValueError(f"steps [{first}, {stop}) need frames beyond the part given")
        out = self.net.head_windows(feats, local)
        return torch.cat([out["embedding"], out["logits"]], dim=-1)[0]


def extra_features(y: np.ndarray, config: FeatureConfig, steps: int) -> torch.Tensor:
    """The ``config.extras`` of mono audio at ``config.sr``, ``(steps, n)`` (see :class:`FeatureConfig`)."""
    parts = []
    for name in config.extras:
        if name == "mode":
            parts.append(mode_features(y, config.sr, steps))
    return torch.from_numpy(np.concatenate(parts, axis=1))


def feature_extractor(config: FeatureConfig = _DEFAULT, **kwargs) -> nn.Module:
    """The module computing ``config``'s features: :class:`LogMel`, :class:`WaveformFeatures` or
    :class:`MusicnnEmbedding`."""
    if config.kind == "musicnn":
        return MusicnnEmbedding(config)
    return LogMel(config, **kwargs) if config.kind == "logmel" else WaveformFeatures(config)


@functools.lru_cache(maxsize=8)
def _extractor(config: FeatureConfig, device: str) -> nn.Module:
    return feature_extractor(config).to(device).eval()


def compute_features(y: np.ndarray, config: FeatureConfig = _DEFAULT, *, device: str = "cpu") -> np.ndarray:
    """Features of one mono waveform.

    Parameters
    ----------
    y : np.ndarray [shape=(samples,)]
        Mono audio at ``config.sr``.
    config : FeatureConfig
    device : str
        Torch device for the computation (``"cpu"``, ``"cuda"``, ``"cuda:1"``...).

    Returns
    -------
    np.ndarray [shape=(frames, n_bins), dtype=float32]
        Log-Mel dB ``(1 + samples // hop_length, n_mels)``, the waveform ``(samples, 1)``, or the MusiCNN
        embedding ``(samples // (sr / 2), 250)``.
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(
            f"compute_features expects a non-empty mono waveform (samples,), got shape {y.shape}"
        )
    if config.kind == "waveform":
        return np.ascontiguousarray(y, dtype=np.float32)[:, None]
    with torch.inference_mode():
        out = _extractor(config, str(torch.device(device)))(torch.from_numpy(np.ascontiguousarray(y)))
    return out.cpu().numpy()


def musicnn_file_features(
    path: str | os.PathLike,
    config: FeatureConfig,
    *,
    offset: float = 0.0,
    duration: float | None = None,
    device: str = "cpu",
    block_s: float = 304.0,
    context_s: float = 16.0,
) -> np.ndarray:
    """``kind="musicnn"`` features of a (long) file in memory that does not grow with its length: the file is
    read twice, block by block -- once to measure its loudness (:class:`~moodscope.audio.loudness.LoudnessMeter`),
    once to compute the steps of each ``block_s`` block from its samples and ``context_s`` of context on each
    side (both rounded to multiples of 16 s, where frames, steps and chroma frames meet). Equal to
    ``compute_features(load_audio(path), config)`` within float rounding: the context covers what a step
    sees (its 3 s patch, about 3 s more of the convolutions' reach, the mode features' 10 s). Peak memory is a
    block's worth plus the result (1 kB per second): under 1 GB for any length
    (``benchmarks/long_track_memory.py``); the second read and the context cost about 10 % more time.

    Raises :class:`AudioError` as :func:`~moodscope.audio.decode.load_audio` (silence when the first pass ends).
    """
    if config.kind != "musicnn":
        raise ValueError(f"musicnn_file_features reads kind='musicnn' features, not {config.kind!r}")
    path, sr = Path(path), config.sr
    emb = _extractor(config.without_extras(), str(torch.device(device)))
    step = int(round(sr * SEGMENT_S))
    unit = math.lcm(step, config.hop_length, 800 if config.extras else 1)  # 800: the chroma's hop
    block = unit * max(1, round(block_s * sr / unit))
    ctx = unit * max(1, math.ceil(context_s * sr / unit))
    info = audio_info(path)
    region = RegionReader(path, info, sr, offset, duration)
    check_length(path, region.n_native, info.samplerate, min_duration=MIN_DURATION_S)
    meter, sum_squares, piece = LoudnessMeter(sr), 0.0, 60 * sr
    # pass 1: the loudness, the level and what the samples say (content notes); ~15 % of the time
    with progress_share(0.0, 0.15):
        try:
            a = 0
            while a < region.n:
                y = region.read(a, min(a + piece, region.n))
                y = y[: max(0, min(y.size, region.n - a))].astype(np.float64)
                meter.update(y)
                sum_squares += float(np.dot(y, y))
                a += piece
        finally:
            region.close()
    if region.peak < SILENCE_THRESHOLD:
        raise AudioError(path, "silent: every sample is zero")
    content.report(region.content)
    n, gain = region.n, np.float32(emb.gain(meter, sum_squares))
    steps = max(1, n // step)
    region = RegionReader(path, info, sr, offset, duration)
    region.content = None  # measured in the first pass
    parts, kept, kept_at = [], np.zeros(0, np.float32), 0  # samples [kept_at, kept_at + len) already read
    with progress_share(0.15, 1.0):  # pass 2: the steps of each block
        try:
            for s0 in range(0, steps, block // step):
                s1 = min(steps, s0 + block // step)
                a, b = max(0, s0 * step - ctx), min(n, s1 * step + ctx)
                # the context shared with the previous block is kept; the rest is read a minute at a time (a
                # whole block at once would decode ~10 minutes at the file's own rate and channels)
                old = kept[max(0, a - kept_at) :] if kept_at + kept.size > a else np.zeros(0, np.float32)
                new = [region.read(p, min(p + piece, b)) for p in range(a + old.size, b, piece)]
                y = np.concatenate([old, *new])[: b - a]
                kept, kept_at = y, a
                with torch.inference_mode():
                    x = torch.from_numpy(y * gain if gain != 1.0 else y)
                    part = emb.steps_of(x, start=a, first=s0, stop=s1, n_total=n).cpu().numpy()
                if config.extras:  # from the samples as read, as file_features computes them
                    extra = extra_features(y, config, s1 - a // step)[s0 - a // step :].numpy()
                    part = np.concatenate([part, extra], axis=1)
                parts.append(part)
        finally:
            region.close()
    return np.concatenate(parts, axis=0)


def iter_file_features(
    path: str | os.PathLike,
    config: FeatureConfig = _DEFAULT,
    *,
    chunk_s: float = 60.0,
    offset: float = 0.0,
    duration: float | None = None,
    device: str = "cpu",
    min_duration: float = MIN_DURATION_S,
    check_silent: bool = True,
) -> Iterator[np.ndarray]:
    """Features of a (long) file as consecutive blocks, decoding about ``chunk_s`` seconds at a time.

    Each chunk is decoded with ``n_fft // 2`` samples of context on both sides and analysed with
    ``center=False``; only the true start and end of the file (or region) are zero-padded, so
    ``np.concatenate(list(iter_file_features(path, config)))`` equals ``file_features(path, config)``
    (exactly at the file's own rate, within float32 rounding when resampling). Memory stays
    proportional to ``chunk_s``, not to the file's length.

    Parameters
    ----------
    path : path-like
    config : FeatureConfig
    chunk_s : float
        Seconds of output per block (the last block is shorter).
    offset, duration : float
        Region of the file, as in :func:`moodscope.audio.decode.load_audio`.
    device : str
    min_duration, check_silent
        As in :func:`~moodscope.audio.decode.load_audio`. Silence is only known at the end: the
        :class:`AudioError` for an all-silent file is raised after the last block.

    Notes
    -----
    ``config.top_db`` is not applied here (it clips relative to the whole file's maximum); clip the
    concatenation, as :func:`file_features` does. Features that do not stream (``config.streams`` false,
    the MusiCNN embedding) come as one block of the whole region.

    Yields
    ------
    np.ndarray [shape=(frames_k, n_bins), dtype=float32]

    Raises
    ------
    AudioError
        As :func:`~moodscope.audio.decode.load_audio`.
    """
    if chunk_s <= 0:
        raise ValueError(f"chunk_s must be > 0, not {chunk_s}")
    path = Path(path)
    if not config.streams:
        y = load_audio(
            path,
            sr=config.sr,
            offset=offset,
            duration=duration,
            min_duration=min_duration,
            check_silent=check_silent,
        )
        yield compute_features(y, config, device=device)
        return
    info = audio_info(path)
    region = RegionReader(path, info, config.sr, offset, duration)
    # too short is decided from the header; a shorter-than-declared decode is caught per chunk
    check_length(path, region.n_native, info.samplerate, min_duration=min_duration)
    try:
        yield from _iter_region(region, config, chunk_s=chunk_s, device=device)
    finally:
        region.close()
    if check_silent and region.peak < SILENCE_THRESHOLD:
        raise AudioError(path, "silent: every sample is zero")
    content.report(region.content)


def _iter_region(
    region: RegionReader, config: FeatureConfig, *, chunk_s: float, device: str
) -> Iterator[np.ndarray]:
    if config.kind == "waveform":
        block = max(1, int(round(chunk_s * config.sr)))
        a = 0
        while a < region.n:
            y = region.read(a, min(a + block, region.n))
            y = y[: max(0, min(y.size, region.n - a))]
            if y.size:
                yield y[:, None]
            a += block
    else:
        hop, n_fft = config.hop_length, config.n_fft
        pad = n_fft // 2 if config.center else 0
        block = max(1, int(round(chunk_s * config.sr / hop)))
        t0 = 0
        while True:
            n_frames = 1 + (region.n + 2 * pad - n_fft) // hop
            if t0 >= n_frames:
                break
            t1 = min(t0 + block, n_frames)
            a = t0 * hop - pad
            y = region.read(a, (t1 - 1) * hop - pad + n_fft)
            n_frames = 1 + (region.n + 2 * pad - n_fft) // hop  # the read may have found the true end
            t1 = min(t1, n_frames)
            if t1 > t0:
                with torch.inference_mode():
                    x = torch.from_numpy(y)
                    feats = _chunk_logmel(config, str(torch.device(device)))(x)
                yield feats[: t1 - t0].cpu().numpy()
            t0 = t1


@functools.lru_cache(maxsize=8)
def _chunk_logmel(config: FeatureConfig, device: str) -> LogMel:
    return LogMel(dataclasses.replace(config, center=False, top_db=None)).to(device).eval()
