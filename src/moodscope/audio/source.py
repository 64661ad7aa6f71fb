"""Where the feature road reads: the mono samples, at the features' rate, of one file region or one array.

A :class:`Source` is read by :func:`moodscope.audio.features.features_of` either whole (decoded at once: short
files, arrays) or in forward passes of blocks (long files: memory bounded by a block, not by the file). The
decoding checks (too short, NaN/inf, silent) and the content notes (:mod:`moodscope.audio.content`) come with
the read, whichever way it goes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import AudioError
from . import content
from .decode import RegionReader, audio_info, load_audio, native_span, resample, to_mono
from .samples import MIN_DURATION_S, SILENCE_THRESHOLD, check_length

#: Files (regions) longer than this are read in blocks, never whole, so that memory stays bounded
#: (``MOODSCOPE_LONG_FILE_S`` overrides it: ``benchmarks/long_track_memory.py`` measures both roads).
LONG_FILE_S = 600.0
#: The same for MusiCNN features, read in blocks in two passes beyond it: a 5-minute 48 kHz stereo track read
#: whole peaks at about 0.77 GB, a 10-minute one at 1.2 GB.
MUSICNN_LONG_FILE_S = 300.0


def long_file_s(kind: str = "logmel") -> float:
    """:data:`LONG_FILE_S` (:data:`MUSICNN_LONG_FILE_S` for ``kind="musicnn"``), or ``MOODSCOPE_LONG_FILE_S``
    when set to a positive number."""
    default = MUSICNN_LONG_FILE_S if kind == "musicnn" else LONG_FILE_S
    try:
        value = float(os.environ.get("MOODSCOPE_LONG_FILE_S", ""))
    except ValueError:
        return default
    return value if value > 0 and value == value else default


class _ArrayReader:
    """:class:`RegionReader`'s ``read`` over samples already in memory (zeros outside them)."""

    def __init__(self, y: np.ndarray):
        self.y, self.n = y, y.shape[0]

    def read(self, a: int, b: int) -> np.ndarray:
        out = np.zeros(b - a, dtype=np.float32)
        lo, hi = max(a, 0), min(b, self.n)
        if lo < hi:
            out[lo - a : hi - a] = self.y[lo:hi]
        return out


class Source:
    """The mono samples of a file region (``offset``, ``duration`` in seconds) or of an array, at ``sr``.

    Build one with :meth:`file` or :meth:`array`. A file is decoded only when read: :meth:`whole` decodes the
    region at once (:func:`~moodscope.audio.decode.load_audio`, with its checks and content notes) and keeps it;
    :meth:`reading` opens a forward pass (:class:`~moodscope.audio.decode.RegionReader`) whose checks come as it
    reads and, for the pass that ``checks``, when it ends (silence, content notes).
    """

    def __init__(
        self,
        sr: int,
        *,
        path: Path | None = None,
        samples: np.ndarray | None = None,
        offset: float = 0.0,
        duration: float | None = None,
        min_duration: float = MIN_DURATION_S,
        check_silent: bool = True,
    ):
        self.sr, self.path, self._samples = sr, None if path is None else Path(path), samples
        self.offset, self.duration = offset, duration
        self.min_duration, self.check_silent = min_duration, check_silent
        self._seconds = None if samples is None else samples.shape[0] / float(sr)
        if self.path is not None:  # bad input (missing, unknown format, offset past the end) fails here
            self._info = audio_info(self.path)
            start, stop = native_span(self._info, offset, duration, path=self.path)
            self._seconds = (stop - start) / self._info.samplerate

    @classmethod
    def file(
        cls,
        path: str | os.PathLike,
        sr: int,
        *,
        offset: float = 0.0,
        duration: float | None = None,
        min_duration: float = MIN_DURATION_S,
        check_silent: bool = True,
    ) -> Source:
        """A file region; bad input (missing, unknown format, offset past the end) fails here, before any work."""
        return cls(
            sr,
            path=Path(path),
            offset=offset,
            duration=duration,
            min_duration=min_duration,
            check_silent=check_silent,
        )

    @classmethod
    def array(cls, y, rate: int, sr: int) -> Source:
        """Samples ``(n,)``, ``(channels, n)`` or ``(n, channels)`` at ``rate``, mixed to mono and resampled to
        ``sr``; what they say beyond the music is noted (:func:`~moodscope.audio.content.report_samples`)."""
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == 2:  # (channels, n) or (n, channels)
            y = to_mono(y.T if y.shape[0] <= 8 else y)
        content.report_samples(y, int(rate))
        src = cls(sr, samples=resample(y, rate, sr) if rate != sr else y)
        src._seconds = y.shape[0] / float(rate)  # the array's own length, not its resampled one's
        return src

    @property
    def in_memory(self) -> bool:
        """Whether the samples are decoded already (an array, or a file read :meth:`whole`)."""
        return self._samples is not None

    def seconds(self) -> float:
        """The region's length in seconds: an array's own, a file's from its header (an MP3's estimated)."""
        return self._seconds

    def is_long(self, kind: str) -> bool:
        """A file region longer than :func:`long_file_s` for features of ``kind``: read in blocks, never whole."""
        return self.path is not None and not self.in_memory and self.seconds() > long_file_s(kind)

    def whole(self) -> np.ndarray:
        """All the samples, decoded once and kept."""
        if self._samples is None:
            self._samples = load_audio(
                self.path,
                sr=self.sr,
                offset=self.offset,
                duration=self.duration,
                min_duration=self.min_duration,
                check_silent=self.check_silent,
            )
        return self._samples

    @contextlib.contextmanager
    def reading(self, *, checks: bool = True) -> Iterator:
        """A forward pass: an object with ``n`` (the samples' count, refined as a file's end is found) and
        ``read(a, b)`` (samples ``[a, b)``, zeros outside ``[0, n)``; ``a`` never decreasing). Where ``checks``,
        a file's silence and content notes are judged when the pass has read it all."""
        if self._samples is not None:
            yield _ArrayReader(self._samples)
            return
        region = RegionReader(self.path, self._info, self.sr, self.offset, self.duration)
        if not checks:
            region.content = None
        try:
            # too short is decided from the header; a shorter-than-declared decode is caught as it reads
            check_length(self.path, region.n_native, self._info.samplerate, min_duration=self.min_duration)
            yield region
        finally:
            region.close()
        if checks:
            if self.check_silent and region.peak < SILENCE_THRESHOLD:
                raise AudioError(self.path, "silent: every sample is zero")
            content.report(region.content)


__all__ = ["LONG_FILE_S", "MUSICNN_LONG_FILE_S", "Source", "long_file_s"]
