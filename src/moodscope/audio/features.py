"""Log-Mel features (the papers' settings) from waveforms, in memory or streamed block by block from a file."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from ..config import SEGMENT_S, FeatureConfig
from .decode import progress_share
from .loudness import LoudnessMeter
from .mel import DEFAULT_FEATURES, LogMel
from .samples import MIN_DURATION_S
from .source import Source
from .tonal import mode_features

_WAVEFORM = FeatureConfig(kind="waveform")


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

    def gain(self, meter: LoudnessMeter | None, sum_squares: float, n: int) -> float:
        """The level change the features are computed at, for a track of ``n`` samples at ``config.sr``: its
        :class:`LoudnessMeter` brings it to ``loudness_lufs`` (``None`` where that is not set), then the
        ``level_db`` ceiling applies to the RMS its ``sum_squares`` gives."""
        gain = meter.gain(self.config.loudness_lufs) if self.config.loudness_lufs is not None else 1.0
        if self.config.level_db is not None and n:
            rms = gain * math.sqrt(sum_squares / n)
            target = 10.0 ** (self.config.level_db / 20.0)
            if rms > target:  # louder tracks are brought down to the level; quieter ones are left as they are
                gain *= target / rms
        return gain

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if y.dim() != 1:
            raise ValueError(f"MusicnnEmbedding expects one mono waveform (samples,), got {tuple(y.shape)}")
        steps = max(1, y.shape[-1] // int(round(self.config.sr * SEGMENT_S)))
        x = y.detach().cpu().numpy()
        meter = LoudnessMeter(self.config.sr).update(x) if self.config.loudness_lufs is not None else None
        sum_squares = float(np.dot(x.astype(np.float64), x)) if self.config.level_db is not None else 0.0
        gain = self.gain(meter, sum_squares, x.size)
        if gain != 1.0:
            y = y * gain
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


def feature_extractor(config: FeatureConfig = DEFAULT_FEATURES, **kwargs) -> nn.Module:
    """The module computing ``config``'s features: :class:`LogMel`, :class:`WaveformFeatures` or
    :class:`MusicnnEmbedding`."""
    if config.kind == "musicnn":
        return MusicnnEmbedding(config)
    return LogMel(config, **kwargs) if config.kind == "logmel" else WaveformFeatures(config)


@functools.lru_cache(maxsize=8)
def _extractor(config: FeatureConfig, device: str) -> nn.Module:
    return feature_extractor(config).to(device).eval()


def compute_features(
    y: np.ndarray, config: FeatureConfig = DEFAULT_FEATURES, *, device: str = "cpu"
) -> np.ndarray:
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


def features_of(
    source: Source,
    config: FeatureConfig = DEFAULT_FEATURES,
    *,
    device: str = "cpu",
    stream: bool = False,
    cached: np.ndarray | None = None,
    whole: bool | None = None,
    chunk_s: float = 60.0,
    block_s: float = 304.0,
    context_s: float = 16.0,
) -> Iterator[np.ndarray]:
    """The features of a :class:`~moodscope.audio.source.Source` as consecutive blocks of rows: the one road
    from samples to features (prediction, the cache, training and ``moodscope features`` all take it).

    A source is read **whole** (one block, :func:`compute_features`) where it is in memory or short, and in
    **blocks** with the context each kind needs where it is long (beyond
    :func:`~moodscope.audio.source.long_file_s`), so that memory does not grow with its length:

    - log-Mel and waveform: ``chunk_s`` seconds of rows per block, each computed from its samples and
      ``n_fft // 2`` of context on both sides (``center=False``; only the region's true ends are zero-padded).
      With ``stream`` a file is read this way whatever its length (a consumer that takes blocks as they come),
      but for ``top_db``, which clips relative to the whole file's peak: a long file's blocks are joined and
      clipped first, a short one is read whole.
    - MusiCNN (``kind="musicnn"``): read twice -- once to measure the loudness the features are computed at
      (:class:`~moodscope.audio.loudness.LoudnessMeter`), once for the steps of each ``block_s`` block from its
      samples and ``context_s`` of context on each side (both rounded to multiples of 16 s, where frames, steps
      and chroma frames meet): what a step sees (its 3 s patch, about 3 s more of the convolutions' reach, the
      mode features' 10 s). Equal to the whole road within float rounding.

    ``cached``: the rows without extras, kept by the feature cache: only the extras (the mode features) are
    computed, from the audio. ``whole`` forces one way or the other (``None``: decided by the length).

    Raises :class:`AudioError` as :func:`~moodscope.audio.decode.load_audio`; a streamed file's silence is
    known, and raised, when its last block has been read.
    """
    if chunk_s <= 0:
        raise ValueError(f"chunk_s must be > 0, not {chunk_s}")
    stream = stream and config.streams and config.top_db is None  # top_db: the whole file's peak first
    if whole is None:
        whole = source.in_memory or not (source.is_long(config.kind) or stream)
    if config.kind == "musicnn":
        if whole:
            y = source.whole()
            if cached is None:
                yield compute_features(y, config, device=device)
            else:
                yield _with_extras(cached, y, config, len(cached))
        else:
            yield from _musicnn_blocks(source, config, device, cached, block_s=block_s, context_s=context_s)
    elif cached is not None:
        yield cached
    elif whole or not config.streams:  # a kind that does not stream is read whole, however long
        yield compute_features(source.whole(), config, device=device)
    elif stream:
        yield from _streamed_blocks(source, config, chunk_s=chunk_s, device=device)
    else:  # joined, and top_db clipped relative to the whole file's peak, as LogMel clips a whole waveform
        feats = np.concatenate(list(_streamed_blocks(source, config, chunk_s=chunk_s, device=device)))
        if config.kind == "logmel" and config.compression == "db" and config.top_db is not None:
            feats = np.maximum(feats, feats.max() - np.float32(config.top_db))
        yield feats


def _with_extras(rows: np.ndarray, y: np.ndarray, config: FeatureConfig, steps: int, first: int = 0):
    """``rows`` with the extras of their steps ``[first, steps)`` computed from ``y`` (the samples as read)."""
    if not config.extras:
        return rows
    return np.concatenate([rows, extra_features(y, config, steps)[first:].numpy()], axis=1)


def _musicnn_blocks(source, config, device, cached, *, block_s: float, context_s: float):
    sr = config.sr
    emb = _extractor(config.without_extras(), str(torch.device(device)))
    step = int(round(sr * SEGMENT_S))
    unit = math.lcm(step, config.hop_length, 800 if config.extras else 1)  # 800: the chroma's hop
    block = unit * max(1, round(block_s * sr / unit))
    ctx = unit * max(1, math.ceil(context_s * sr / unit))
    piece, gain = 60 * sr, np.float32(1.0)
    if cached is None:  # pass 1: the loudness, the level and what the samples say; ~15 % of the time
        meter, sum_squares = LoudnessMeter(sr), 0.0
        with progress_share(0.0, 0.15), source.reading() as region:
            a = 0
            while a < region.n:
                y = region.read(a, min(a + piece, region.n))
                y = y[: max(0, min(y.size, region.n - a))].astype(np.float64)
                meter.update(y)
                sum_squares += float(np.dot(y, y))
                a += piece
        n, gain = region.n, np.float32(emb.gain(meter, sum_squares, meter.n))
    else:  # the cache's rows were computed from the length pass 1 found (a header's may be an estimate)
        n = None
    # pass 2: the steps of each block (with the cache's rows: only their extras); judged in pass 1 or cached.
    # The progress share is entered around each read only: a context variable set across a ``yield`` would
    # stay set in the consumer's context while it holds the block.
    share = (0.15 if cached is None else 0.0, 1.0)
    with source.reading(checks=False) as region:
        steps = max(1, n // step) if cached is None else len(cached)
        kept, kept_at = np.zeros(0, np.float32), 0  # samples [kept_at, kept_at + len) already read
        for s0 in range(0, steps, block // step):
            s1 = min(steps, s0 + block // step)
            a, b = max(0, s0 * step - ctx), s1 * step + ctx
            b = min(n if n is not None else region.n, b)
            # the context shared with the previous block is kept; the rest is read a minute at a time (a whole
            # block at once would decode ~10 minutes at the file's own rate and channels)
            old = kept[max(0, a - kept_at) :] if kept_at + kept.size > a else np.zeros(0, np.float32)
            with progress_share(*share):
                new = [region.read(p, min(p + piece, b)) for p in range(a + old.size, b, piece)]
            y = np.concatenate([old, *new])[: b - a]
            if n is None:  # the true end, found by reading it, as pass 1 would have
                y = y[: max(0, region.n - a)]
            kept, kept_at = y, a
            if cached is None:
                with torch.inference_mode():
                    x = torch.from_numpy(y * gain if gain != 1.0 else y)
                    part = emb.steps_of(x, start=a, first=s0, stop=s1, n_total=n).cpu().numpy()
            else:
                part = cached[s0:s1]
            yield _with_extras(part, y, config, s1 - a // step, s0 - a // step)


def _streamed_blocks(source, config: FeatureConfig, *, chunk_s: float, device: str) -> Iterator[np.ndarray]:
    """Log-Mel or waveform rows of ``source`` read forward, about ``chunk_s`` seconds of them per block."""
    with source.reading() as region:
        if config.kind == "waveform":
            block = max(1, int(round(chunk_s * config.sr)))
            a = 0
            while a < region.n:
                y = region.read(a, min(a + block, region.n))
                y = y[: max(0, min(y.size, region.n - a))]
                if y.size:
                    yield y[:, None]
                a += block
            return
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
                    feats = _chunk_logmel(config, str(torch.device(device)))(torch.from_numpy(y))
                yield feats[: t1 - t0].cpu().numpy()
            t0 = t1


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
    """``kind="musicnn"`` features of a file read in blocks, twice, whatever its length (:func:`features_of`'s
    road for long files): memory that does not grow with the length -- a block's worth plus the result
    (1 kB per second), under 1 GB for any length (``benchmarks/long_track_memory.py``); the second read and the
    context cost about 10 % more time. Equal to ``compute_features(load_audio(path), config)`` within float
    rounding."""
    if config.kind != "musicnn":
        raise ValueError(f"musicnn_file_features reads kind='musicnn' features, not {config.kind!r}")
    source = Source.file(path, config.sr, offset=offset, duration=duration)
    blocks = features_of(source, config, device=device, whole=False, block_s=block_s, context_s=context_s)
    return np.concatenate(list(blocks), axis=0)


def iter_file_features(
    path: str | os.PathLike,
    config: FeatureConfig = DEFAULT_FEATURES,
    *,
    chunk_s: float = 60.0,
    offset: float = 0.0,
    duration: float | None = None,
    device: str = "cpu",
    min_duration: float = MIN_DURATION_S,
    check_silent: bool = True,
) -> Iterator[np.ndarray]:
    """Features of a (long) file as consecutive blocks: :func:`features_of` on the file, streamed.

    Log-Mel and waveform features come ``chunk_s`` seconds at a time, each decoded with ``n_fft // 2`` samples
    of context on both sides and analysed with ``center=False``; only the true start and end of the file (or
    region) are zero-padded, so ``np.concatenate(list(iter_file_features(path, config)))`` equals
    ``file_features(path, config)`` (exactly at the file's own rate, within float32 rounding when resampling).
    Memory stays proportional to ``chunk_s``, not to the file's length (but with ``top_db``, below).

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
    With ``config.top_db`` the log-Mel comes as one block, clipped (it clips relative to the whole file's
    maximum: a long file's rows are joined in memory first). The
    MusiCNN embedding comes as one block of the whole region (computed in blocks, with context, when long).

    Yields
    ------
    np.ndarray [shape=(frames_k, n_bins), dtype=float32]

    Raises
    ------
    AudioError
        As :func:`~moodscope.audio.decode.load_audio`.
    """
    if chunk_s <= 0:  # before the file is opened, as the arguments' error
        raise ValueError(f"chunk_s must be > 0, not {chunk_s}")
    source = Source.file(
        path,
        config.sr,
        offset=offset,
        duration=duration,
        min_duration=min_duration,
        check_silent=check_silent,
    )
    blocks = features_of(source, config, device=device, stream=True, chunk_s=chunk_s)
    if config.kind == "musicnn":  # one block of the whole region, however it was read
        yield np.concatenate(list(blocks), axis=0)
    else:
        yield from blocks


@functools.lru_cache(maxsize=8)
def _chunk_logmel(config: FeatureConfig, device: str) -> LogMel:
    return LogMel(dataclasses.replace(config, center=False, top_db=None)).to(device).eval()
