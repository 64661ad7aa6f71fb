"""Audio decoding: any supported file to a mono float32 waveform at the configured rate.

WAV, FLAC, OGG (Vorbis), Opus, MP3 and AIFF are decoded with soundfile (libsndfile), which seeks,
so ``offset``/``duration`` reads decode only the requested span. M4A/AAC go through the ``ffmpeg``
binary when it is installed (``-ss``/``-t`` on the input); otherwise they raise a clear
:class:`~moodscope.errors.AudioError` saying how to install it. Channels are mixed down by their
mean and the result is resampled with soxr (quality ``"HQ"``) when the file's rate differs.

Every problem with an input file raises one :class:`~moodscope.errors.AudioError` whose message
names the file and the cause, e.g. ``song.wav: silent: every sample is zero``.

>>> from moodscope.audio import load_audio
>>> y = load_audio("song.mp3", sr=44100, offset=30.0, duration=30.0)  # doctest: +SKIP
>>> y.shape, y.dtype  # doctest: +SKIP
((1323000,), dtype('float32'))
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import math
import os
import re
import stat
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import AudioError, shown_path
from . import content
from .containers import (
    AudioInfo,
    check_container,
    ffmpeg_tools,
    ffprobe_info,
    format_seconds,
    last_line,
    mp3_cut_last_frame,
    mp3_tag_bytes,
    mp3_untagged_frames,
    native_span,
    quiet_c_stderr,
    truncation_tolerance,
)
from .samples import (
    MIN_DURATION_S,
    check_length,
    check_samples,
    resample,
    sample_peak,
    to_mono,
)

#: File extensions moodscope reads (lower case, with the dot), in order of preference where one track id has
#: several files (dataset adapters keep the first): lossless first, then lossy, ffmpeg-decoded last.
AUDIO_EXTENSIONS: tuple[str, ...] = (
    ".wav", ".flac", ".aiff", ".aif", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac"
)  # fmt: skip
#: the same, as a set
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(AUDIO_EXTENSIONS)
#: Extensions decoded through the ffmpeg binary rather than libsndfile.
FFMPEG_EXTENSIONS: frozenset[str] = frozenset({".m4a", ".aac"})

#: Sample rates (Hz) and channel counts a file may declare: beyond them a header is damaged, and believing it
#: would make resampling or mixing allocate without bound.
MIN_RATE, MAX_RATE, MAX_CHANNELS = 1000, 768_000, 64

#: Most samples decoded by one call into the decoder (about 24 s at 44.1 kHz)
_READ_PIECE = 1 << 20
#: ``callback(seconds_decoded, seconds_total)`` of the current context's decoding (see :func:`decoding_progress`)
_progress: contextvars.ContextVar = contextvars.ContextVar("moodscope_decoding_progress", default=None)

#: Samples decoded before an MP3 seek target and dropped (8 MPEG frames of 1152 samples).
_MP3_PREROLL = 8 * 1152


@contextlib.contextmanager
def decoding_progress(callback):
    """Within the block, every file decoded in this context reports ``callback(seconds_done, seconds_total)``
    after each piece (about every 24 s of audio): progress for long files, whatever reads them."""
    token = _progress.set(callback)
    try:
        yield
    finally:
        _progress.reset(token)


@contextlib.contextmanager
def progress_share(lo: float, hi: float):
    """Within the block, decoding reports its progress as the share ``[lo, hi]`` (fractions) of the current
    report (:func:`decoding_progress`): a file read twice moves one bar once."""
    outer = _progress.get()
    if outer is None:
        yield
        return

    def share(done: float, total: float) -> None:
        outer(total * (lo + (hi - lo) * done / total) if total > 0 else done, total)

    with decoding_progress(share):
        yield


def is_audio_file(path: str | os.PathLike) -> bool:
    """True when ``path`` has one of :data:`SUPPORTED_EXTENSIONS` (case-insensitive); the file is not opened."""
    return Path(path).suffix.lower() in SUPPORTED_EXTENSIONS


_FILE_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _check_path(path: Path) -> str:
    """Validate that ``path`` is a non-empty regular file with a supported extension; return the extension.

    Never opens the file: a FIFO or a device named ``x.wav`` is refused before anything could block on it.
    """
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise AudioError(path, "symbolic link loop") from None
        if e.errno == errno.ENOENT and os.path.islink(path):
            raise AudioError(path, f"broken symbolic link (to {shown_path(os.readlink(path))})") from None
        if e.errno == errno.ENOENT:
            raise AudioError(path, "no such file") from None
        raise AudioError(path, f"cannot read file ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(path, "is a directory, not an audio file")
    for is_kind, kind in _FILE_KINDS:
        if is_kind(st.st_mode):
            raise AudioError(path, f"not a regular file ({kind})")
    ext = path.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        shown = repr(ext) if ext else "(no extension)"
        supported = ", ".join(sorted(e.lstrip(".") for e in SUPPORTED_EXTENSIONS))
        raise AudioError(path, f"unknown audio format {shown} (supported: {supported})")
    if st.st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise AudioError(path, "cannot read file (permission denied)")
    return ext


def _unreadable(path: Path, e: BaseException) -> AudioError:
    msg = " ".join(str(e).split()) or type(e).__name__
    msg = re.sub(r"^Error(?: opening b?'.*?')? ?: ", "", msg).rstrip(".")  # libsndfile repeats the path
    if "does not exist or is not a regular file" in msg:  # what libsndfile says about non-MP3 bytes in .mp3
        msg = "no decodable audio frames"
    return AudioError(path, f"not a readable audio file ({msg})")


# ----------------------------------------------------------------------------------------------------
# public API


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Read a file's rate, length and channel count without decoding it.

    Raises
    ------
    AudioError
        Missing file, directory, unknown extension, empty file, unreadable header, 0-sample file.
    """
    path = Path(path)
    ext = _check_path(path)
    if ext in FFMPEG_EXTENSIONS:
        info = ffprobe_info(path)
    else:
        try:
            with quiet_c_stderr():  # libsndfile picks its decoder by content: any name may hold MP3
                i = sf.info(os.fsencode(path))  # bytes: a name that is not UTF-8 opens too
        except (sf.SoundFileError, RuntimeError) as e:
            raise _unreadable(path, e) from e
        frames = int(i.frames)
        if i.format == "MP3" and frames > 0:
            tags = mp3_tag_bytes(path)  # read once: the length estimate and the frame walk both need them
            frames = mp3_untagged_frames(path, frames, tags)
            if mp3_cut_last_frame(path, tags):
                raise AudioError(path, "truncated: the last MPEG frame is cut short (a partial download?)")
        info = AudioInfo(
            samplerate=int(i.samplerate), frames=frames, channels=int(i.channels), format=i.format
        )
        if info.frames > 0 and info.samplerate > 0:
            check_container(path, info)
    if info.frames <= 0:
        # libsndfile reports 0 frames both for empty streams and for Ogg files cut before their last page
        raise AudioError(path, "no audio samples (0-sample or truncated file)")
    if info.samplerate <= 0 or info.channels <= 0:
        raise AudioError(
            path, f"not a readable audio file (rate {info.samplerate}, {info.channels} channels)"
        )
    if (
        not MIN_RATE <= info.samplerate <= MAX_RATE
    ):  # resampling 8000 samples at 1 Hz to 44.1 kHz: 350M samples
        raise AudioError(
            path,
            f"not a readable audio file (sample rate {info.samplerate} Hz, outside {MIN_RATE}..{MAX_RATE})",
        )
    if info.channels > MAX_CHANNELS:
        raise AudioError(
            path, f"not a readable audio file ({info.channels} channels, more than {MAX_CHANNELS})"
        )
    return info


def audio_duration(path: str | os.PathLike) -> float:
    """Length of an audio file in seconds, from its header (no decoding).

    Raises the same :class:`AudioError` as :func:`audio_info`.
    """
    return audio_info(path).duration


def _sf_read(f: sf.SoundFile, n: int) -> np.ndarray:
    """Read the next ``n`` frames as float32 ``(m, channels)`` straight from libsndfile.

    ``SoundFile.read`` seeks to its own position after every call, and for MP3 that re-seek makes
    mpg123 resynchronise (wrong samples for a few frames), so consecutive reads would not equal one
    big read. Calling ``sf_readf_float`` directly keeps the decoder running; if soundfile's internals
    change, fall back to the public method.
    """
    lib, ffi = getattr(sf, "_snd", None), getattr(sf, "_ffi", None)
    handle = getattr(f, "_file", None)
    if lib is None or ffi is None or handle is None or not hasattr(sf, "_error_check"):
        return f.read(n, dtype="float32", always_2d=True)
    out = np.empty((n, f.channels), dtype=np.float32)
    got = lib.sf_readf_float(handle, ffi.cast("float *", out.ctypes.data), n)
    sf._error_check(f._errorcode)
    return out[:got]


class AudioStream:
    """Sequential reader of samples ``[start, stop)`` of a file at its own rate, all channels.

    Each :meth:`read` continues where the previous one stopped, so a file is decoded once, in order,
    whatever the block sizes (the decoder never re-seeks; results equal one big read). soundfile
    formats seek once to ``start``; M4A/AAC stream from one ``ffmpeg`` process started at ``start``.
    Use as a context manager or call :meth:`close`.

    Parameters
    ----------
    path : path-like
    start, stop : int
        Sample indices at the file's own rate; ``stop=None`` reads to the end.
    info : AudioInfo, optional
        The file's :func:`audio_info`, to skip reading the header again.

    Raises
    ------
    AudioError
        Bad input (see :func:`audio_info`), undecodable data, or (from :meth:`read`) a stream that
        ends well before the length its header declares ("truncated").
    """

    def __init__(
        self,
        path: str | os.PathLike,
        start: int = 0,
        stop: int | None = None,
        *,
        info: AudioInfo | None = None,
    ):
        self.path = Path(path)
        self.info = info if info is not None else audio_info(self.path)
        self.start = int(start)
        if self.start < 0:
            raise ValueError(f"start must be >= 0, not {start}")
        self.stop = self.info.frames if stop is None else min(int(stop), self.info.frames)
        self.position = self.start  #: index of the next sample :meth:`read` returns
        self._file: sf.SoundFile | None = None
        self._quiet = False
        self._proc: subprocess.Popen | None = None
        self._stderr = None
        if self.stop <= self.start:
            return
        if self.info.format == "FFMPEG":
            self._open_ffmpeg()
            return
        self._quiet = (
            True  # every libsndfile format: a .wav may hold MPEG frames, and libsndfile decodes them
        )
        try:
            with quiet_c_stderr(self._quiet):
                self._file = sf.SoundFile(os.fsencode(self.path))
                if self.start > 0:
                    # libsndfile's MP3 seek lands a few frames off; decode a pre-roll and drop it
                    preroll = min(self.start, _MP3_PREROLL) if self.info.format == "MP3" else 0
                    self._file.seek(self.start - preroll)
                    if preroll:
                        _sf_read(self._file, preroll)
        except (sf.SoundFileError, RuntimeError) as e:
            self.close()
            raise _unreadable(self.path, e) from e

    def _open_ffmpeg(self) -> None:
        ffmpeg, _ = ffmpeg_tools(self.path)
        sr, ch = self.info.samplerate, self.info.channels
        cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]
        if self.start > 0:
            cmd += ["-ss", f"{self.start / sr:.9f}"]
        cmd += ["-t", f"{(self.stop - self.start) / sr:.9f}", "-i", str(self.path), "-map", "0:a:0", "-vn"]
        cmd += ["-f", "f32le", "-acodec", "pcm_f32le", "-ar", str(sr), "-ac", str(ch), "pipe:1"]
        self._stderr = tempfile.TemporaryFile()  # a file, not a pipe: ffmpeg can never block on it
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr
        )

    def _read_ffmpeg(self, n: int) -> np.ndarray:
        ch = self.info.channels
        raw = self._proc.stdout.read(n * 4 * ch)
        if len(raw) < n * 4 * ch:  # end of stream: the process must have succeeded
            rc = self._proc.wait()
            if rc != 0:
                self._stderr.seek(0)
                msg = last_line(self._stderr.read())
                self.close()
                raise AudioError(self.path, f"not a readable audio file (ffmpeg: {msg})")
        m = len(raw) // (4 * ch)
        return np.frombuffer(raw[: m * 4 * ch], dtype="<f4").reshape(m, ch).astype(np.float32)

    def read(self, n: int) -> np.ndarray:
        """Decode the next ``n`` samples (fewer at the end of the span).

        Returns
        -------
        np.ndarray [shape=(m, channels), dtype=float32], ``m <= n``
        """
        n = max(0, min(int(n), self.stop - self.position))
        if n == 0 or (self._file is None and self._proc is None):
            return np.zeros((0, self.info.channels), dtype=np.float32)
        # in pieces: memory follows the samples actually decoded, not the count a header claims
        pieces, got = [], 0
        while got < n:
            want = min(n - got, _READ_PIECE)
            if self._proc is not None:
                piece = self._read_ffmpeg(want)
            else:
                try:
                    with quiet_c_stderr(self._quiet):
                        piece = _sf_read(self._file, want)
                except (sf.SoundFileError, RuntimeError) as e:
                    self.close()
                    raise _unreadable(self.path, e) from e
            pieces.append(piece)
            got += piece.shape[0]
            report = _progress.get()
            if report is not None:
                report((self.position + got) / self.info.samplerate, self.info.duration)
            if piece.shape[0] < want:
                break
        data = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        self.position += data.shape[0]
        if data.shape[0] < n:
            self.stop = self.position  # the stream ended here
            if self.info.frames - self.position > truncation_tolerance(self.info):
                self.close()
                raise AudioError(
                    self.path,
                    f"truncated: decoded {format_seconds(self.position / self.info.samplerate)} s "
                    f"of {format_seconds(self.info.duration)} s",
                )
        return np.ascontiguousarray(data)

    def close(self) -> None:
        """Release the file or the ffmpeg process."""
        f, proc, err = (
            getattr(self, "_file", None),
            getattr(self, "_proc", None),
            getattr(self, "_stderr", None),
        )
        self._file = self._proc = self._stderr = None
        if f is not None:
            f.close()
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            proc.wait()
        if err is not None:
            err.close()

    def __enter__(self) -> AudioStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        self.close()


def read_frames(
    path: str | os.PathLike, start: int = 0, stop: int | None = None, *, info: AudioInfo | None = None
) -> np.ndarray:
    """Decode samples ``[start, stop)`` of a file at its own rate, all channels, no checks on the content.

    This is the low-level reader behind :func:`load_audio` (which adds mixdown, resampling and content
    checks); only the requested span is decoded where the format seeks.

    Parameters
    ----------
    path : path-like
    start, stop : int
        Sample indices at the file's own rate; ``stop=None`` reads to the end.
    info : AudioInfo, optional
        The file's :func:`audio_info`, to skip reading the header again.

    Returns
    -------
    np.ndarray [shape=(n, channels), dtype=float32]
        ``n`` may be less than ``stop - start`` only near the end of files whose length is an estimate.

    Raises
    ------
    AudioError
        Any bad input (see :func:`audio_info`), undecodable or truncated data.
    """
    with AudioStream(path, start, stop, info=info) as stream:
        return stream.read(stream.stop - stream.start)


#: Extra decoded context (seconds) around each piece when resampling piece by piece.
_RESAMPLE_MARGIN_S = 0.1


class RegionReader:
    """Sequential, resampled access to the mono samples of ``[offset, offset + duration)`` of a file at ``sr``.

    ``read(a, b)`` returns region samples ``[a, b)`` with zeros outside ``[0, n)``; calls must move
    forward (``a`` never decreases). It equals slicing ``load_audio(path, sr=sr, offset=offset,
    duration=duration)``: the file is decoded once, in order, through one :class:`AudioStream`
    (exactly the samples of one big read); with resampling, each piece starts on the common sample
    grid of both rates and carries extra decoded context so that soxr's edge transients fall outside
    the returned samples (equal within float32 rounding).
    """

    def __init__(self, path: Path, info: AudioInfo, sr: int, offset: float, duration: float | None):
        self.path, self.info, self.sr = path, info, sr
        start, stop = native_span(info, offset, duration, path=path)
        g = math.gcd(sr, info.samplerate)
        self.step_out, self.step_in = sr // g, info.samplerate // g  # common grid, in out / in samples
        self.margin = int(math.ceil(_RESAMPLE_MARGIN_S * sr))
        self.peak = 0.0
        #: what the samples say beyond the music (:mod:`moodscope.audio.content`), measured when someone listens
        self.content = content.ContentMeter(info.samplerate) if content.collecting_enabled() else None
        self._stream = AudioStream(path, start, stop, info=info)
        self._buf = np.zeros(0, dtype=np.float32)  # native mono samples [_buf_lo, _buf_lo + len)
        self._buf_lo = 0
        self._set_native_length(stop - start)

    def _set_native_length(self, n_native: int) -> None:
        self.n_native = n_native
        self.n = (
            n_native
            if self.sr == self.info.samplerate
            else math.ceil(n_native * self.sr / self.info.samplerate)
        )

    def _more(self, count: int) -> np.ndarray:
        data = self._stream.read(count)
        if data.shape[0] < count:  # the stream ended (header lengths of MP3 are estimates)
            self._set_native_length(self._stream.position - self._stream.start)
        sample_peak(self.path, data)  # NaN/inf refused
        x = to_mono(data)
        if self.content is not None:
            self.content.update(data, x)
        if x.size:
            self.peak = max(self.peak, float(max(-x.min(), x.max())))
        return x

    def _native(self, lo: int, hi: int) -> np.ndarray:
        """Native-rate mono samples ``[lo, hi)`` of the region (fewer at its end)."""
        end = self._buf_lo + self._buf.size
        if lo >= end:
            self._more(lo - end)  # skipped samples are decoded (the stream does not seek) and dropped
            self._buf, self._buf_lo = np.zeros(0, dtype=np.float32), lo
        elif lo > self._buf_lo:
            self._buf, self._buf_lo = self._buf[lo - self._buf_lo :], lo
        elif lo < self._buf_lo:
            raise RuntimeError("RegionReader reads must move forward")
        need = hi - (self._buf_lo + self._buf.size)
        if need > 0:
            self._buf = np.concatenate([self._buf, self._more(need)])
        return self._buf[: hi - lo]

    def read(self, a: int, b: int) -> np.ndarray:
        out = np.zeros(b - a, dtype=np.float32)
        lo, hi = max(a, 0), min(b, self.n)
        if lo >= hi:
            return out
        if self.sr == self.info.samplerate:
            x = self._native(lo, hi)
        else:
            k0 = max(0, lo - self.margin) // self.step_out
            k1 = -(-(hi + self.margin) // self.step_out)
            native = self._native(k0 * self.step_in, min(self.n_native, k1 * self.step_in))
            x = resample(native, self.info.samplerate, self.sr)[
                lo - k0 * self.step_out : hi - k0 * self.step_out
            ]
        x = x[: max(0, min(hi, self.n) - lo)]
        out[lo - a : lo - a + x.size] = x
        return out

    def close(self) -> None:
        self._stream.close()


def load_audio(
    path: str | os.PathLike,
    *,
    sr: int = 44100,
    offset: float = 0.0,
    duration: float | None = None,
    mono: bool = True,
    min_duration: float = MIN_DURATION_S,
    check_silent: bool = True,
) -> np.ndarray:
    """Decode an audio file to a float32 waveform at ``sr``.

    Parameters
    ----------
    path : path-like
        A file with one of :data:`SUPPORTED_EXTENSIONS`.
    sr : int
        Target rate in Hz; the file is resampled with soxr (``"HQ"``) when its own rate differs.
    offset : float
        Start reading this many seconds into the file (seeks; earlier audio is not decoded).
    duration : float, optional
        Read at most this many seconds; ``None`` reads to the end.
    mono : bool
        Mix channels down by their mean (default). With ``False`` the result is ``(channels, n)``.
    min_duration : float
        Shortest accepted read, in seconds (checked at the file's own rate, before resampling).
    check_silent : bool
        Raise for audio whose every sample is (near) zero; pass ``False`` to accept silence.

    Returns
    -------
    np.ndarray [shape=(n,) or (channels, n), dtype=float32]

    Raises
    ------
    AudioError
        Missing file, directory, unknown extension, empty or 0-sample file, unreadable or truncated
        data, NaN/inf samples, too short, silent, ``offset`` at or past the end, or M4A/AAC without ffmpeg.
    ValueError
        Negative ``offset`` or non-positive ``duration``.

    Examples
    --------
    >>> y = load_audio("song.flac", sr=44100)  # doctest: +SKIP
    >>> y.ndim, y.dtype  # doctest: +SKIP
    (1, dtype('float32'))
    """
    path = Path(path)
    info = audio_info(path)
    start, stop = native_span(info, offset, duration, path=path)
    data = read_frames(path, start, stop, info=info)
    check_samples(path, data, info.samplerate, min_duration=min_duration, check_silent=check_silent)
    x = to_mono(data) if mono else None
    content.report_samples(data, info.samplerate, x)
    if mono:
        return resample(x, info.samplerate, sr)
    return np.ascontiguousarray(resample(data, info.samplerate, sr).T)


__all__ = [
    "AudioStream",
    "decoding_progress",
    "progress_share",
    "AUDIO_EXTENSIONS",
    "FFMPEG_EXTENSIONS",
    "MIN_DURATION_S",
    "SUPPORTED_EXTENSIONS",
    "AudioInfo",
    "audio_duration",
    "audio_info",
    "check_length",
    "check_samples",
    "is_audio_file",
    "load_audio",
    "native_span",
    "read_frames",
    "resample",
    "to_mono",
]
