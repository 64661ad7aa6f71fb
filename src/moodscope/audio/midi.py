"""MIDI in: transforms of a :class:`mido.MidiFile`, key estimation, parallel-mode conversion, and rendering to
audio with the FluidSynth program (for MIDI datasets such as EMOPIA).

Transforms take a ``mido.MidiFile`` and return a new one (the input is never changed; every message is
copied). Channel 10 (index 9) is General MIDI percussion and is left alone by every pitch and program
transform.

- :func:`scale_tempo` (``factor > 1`` is faster), :func:`scale_velocity`, :func:`set_program`,
  :func:`transpose`;
- :func:`estimate_key`: Krumhansl-Kessler key profiles correlated with the duration-weighted pitch-class
  histogram; :func:`to_mode`: the parallel major or minor, keeping the tonic;
- :func:`render`: one MIDI (a path or a ``MidiFile``) to a WAV/FLAC file through the ``fluidsynth`` command
  line, written atomically; :func:`find_soundfont` finds ``FluidR3_GM`` / ``TimGM6mb`` (or takes a path);
- :class:`RenderVariant`: one rendering set-up (soundfont, program, velocity and tempo factors, mode,
  reverb, gain, rate) with a stable :meth:`~RenderVariant.key` for cache paths.

``mido`` (pure Python, MIT) is a dependency of moodscope but is imported only when a function here needs it,
so ``import moodscope`` works without it; without it, those functions raise
:class:`~moodscope.errors.MissingToolError` saying how to install it. A missing ``fluidsynth`` binary or
soundfont raises the same error naming the Debian package (``apt-get install -y --no-install-recommends
fluidsynth fluid-soundfont-gm``). A MIDI file that cannot be read or rendered raises
:class:`~moodscope.errors.AudioError` naming the file and the cause.

>>> from moodscope.audio import midi
>>> mid = midi.read_midi("Q1_0vLPYiPN7qY_0.mid")                    # doctest: +SKIP
>>> minor, key = midi.to_mode(midi.scale_tempo(mid, 1.2), "minor")  # doctest: +SKIP
>>> key.name                                                        # doctest: +SKIP
'G major'
>>> midi.render(minor, "out.flac", soundfont="TimGM6mb", sr=22050)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..errors import AudioError, MissingToolError
from ..fileio import atomic_path
from .tonal import KK_MAJOR, KK_MINOR, PITCH_NAMES, key_correlations  # noqa: F401  (part of this API)

if TYPE_CHECKING:  # pragma: no cover
    import mido

#: General MIDI percussion channel (channel 10, index 9): no pitch, program or key transform touches it.
DRUM_CHANNEL = 9
#: MIDI's default tempo when a file has no ``set_tempo``: 500,000 us per beat = 120 bpm.
DEFAULT_TEMPO = 500_000
#: Largest tempo a ``set_tempo`` message can hold (24 bits, us per beat).
MAX_TEMPO = 0xFFFFFF
#: Default master gain of :func:`render`. FluidSynth's own default is 0.2. At 0.5, 38 EMOPIA clips (the 20 with the
#: most loud note onsets per second, and 18 others) peaked at 0.41 (FluidR3_GM) and 0.47 (TimGM6mb) at most, mono
#: downmix with reverb: loud enough, and far from clipping.
DEFAULT_GAIN = 0.5
#: Default sample rate of :func:`render` (Hz).
DEFAULT_SR = 22050
#: :func:`render` cuts the trailing audio this many dB below the peak (FluidSynth's padding of silence).
TRIM_DB = 60.0
#: Bumped when rendering changes in a way that alters the audio, so cached renders are not reused.
RENDER_VERSION = 1

APT_FLUIDSYNTH = "apt-get install -y --no-install-recommends fluidsynth fluid-soundfont-gm"
#: soundfont name (lower case) -> (canonical name, file name, Debian package)
SOUNDFONTS: dict[str, tuple[str, str, str]] = {
    "fluidr3_gm": ("FluidR3_GM", "FluidR3_GM.sf2", "fluid-soundfont-gm"),
    "timgm6mb": ("TimGM6mb", "TimGM6mb.sf2", "timgm6mb-soundfont"),
}
#: Folders searched for a named soundfont, after those in ``$MOODSCOPE_SOUNDFONTS`` (``os.pathsep``-separated).
SOUNDFONT_DIRS: tuple[str, ...] = (
    "/usr/share/sounds/sf2",
    "/usr/share/soundfonts",
    "/usr/local/share/soundfonts",
    "/opt/homebrew/share/soundfonts",
    "~/.local/share/soundfonts",
)


_FORMATS = {".wav": "WAV", ".flac": "FLAC"}
_MODES = ("major", "minor")


def _mido():
    """The ``mido`` module, or one clear error line."""
    try:
        import mido
    except ImportError:
        raise MissingToolError(
            "mido not installed: MIDI support needs it (pip install 'mido>=1.3')"
        ) from None
    return mido


# ----------------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------------
def read_midi(path: str | os.PathLike) -> mido.MidiFile:
    """Parse a MIDI file; a missing or unreadable file raises :class:`AudioError` naming it."""
    mido = _mido()
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "file not found")
    try:
        return mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as e:
        raise AudioError(path, f"not a readable MIDI file ({type(e).__name__}: {e})") from None


def _as_midi(midi: str | os.PathLike | mido.MidiFile) -> mido.MidiFile:
    return read_midi(midi) if isinstance(midi, (str, os.PathLike)) else midi


def _name(midi) -> str:
    if isinstance(midi, (str, os.PathLike)):
        return str(midi)
    return str(getattr(midi, "filename", None) or "<MidiFile>")


def midi_duration(midi: str | os.PathLike | mido.MidiFile) -> float:
    """Length in seconds up to the last event (tempo changes included), as ``mido.MidiFile.length``.

    A rendering is longer by the release of the last notes (about 2-3 s with FluidR3_GM).
    """
    mid = _as_midi(midi)
    try:
        return float(mid.length)
    except ValueError as e:  # type 2 (asynchronous tracks)
        raise AudioError(_name(midi), f"cannot compute the length ({e})") from None


class Note(NamedTuple):
    """One sounding note: start and end in seconds, channel, MIDI pitch, velocity."""

    start_s: float
    end_s: float
    channel: int
    pitch: int
    velocity: int


def notes(mid: mido.MidiFile) -> list[Note]:
    """Every note of the file, in order of its end, with times in seconds.

    A note-on with velocity 0 ends a note; overlapping notes of one pitch and channel end first-in first-out;
    notes still sounding at the last event end there.
    """
    t = 0.0
    active: dict[tuple[int, int], list[tuple[float, int]]] = {}
    out: list[Note] = []
    for msg in mid:  # merged tracks, delta times in seconds
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            active.setdefault((msg.channel, msg.note), []).append((t, msg.velocity))
        elif msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0):
            stack = active.get((msg.channel, msg.note))
            if stack:
                start, vel = stack.pop(0)
                out.append(Note(start, t, msg.channel, msg.note, vel))
    for (ch, pitch), stack in active.items():
        out.extend(Note(start, t, ch, pitch, vel) for start, vel in stack)
    return out


# ----------------------------------------------------------------------------------------------------------
# Transforms
# ----------------------------------------------------------------------------------------------------------
def _rebuild(mid: mido.MidiFile, fn: Callable[[mido.Message], mido.Message | None]) -> mido.MidiFile:
    """A new file with ``fn`` applied to a copy of every message; ``None`` drops a message (its delta time goes
    to the next one, so timing is kept)."""
    mido = _mido()
    out = mido.MidiFile(type=mid.type, ticks_per_beat=mid.ticks_per_beat, charset=mid.charset)
    for track in mid.tracks:
        new = mido.MidiTrack()
        carry = 0
        for msg in track:
            m = fn(msg.copy())
            if m is None:
                carry += msg.time
                continue
            if carry:
                m = m.copy(time=m.time + carry)
                carry = 0
            new.append(m)
        out.tracks.append(new)
    return out


def _is_pitched(msg) -> bool:
    return msg.type in ("note_on", "note_off", "polytouch") and msg.channel != DRUM_CHANNEL


def _fold(pitch: int) -> int:
    """Bring a pitch into 0..127 by whole octaves."""
    while pitch < 0:
        pitch += 12
    while pitch > 127:
        pitch -= 12
    return pitch


def _map_pitches(mid: mido.MidiFile, fn: Callable[[int], int]) -> mido.MidiFile:
    """Apply a pitch map to every pitched note message (note-ons and their note-offs map alike)."""

    def one(msg):
        return msg.copy(note=_fold(fn(msg.note))) if _is_pitched(msg) else msg

    return _rebuild(mid, one)


def scale_tempo(mid: mido.MidiFile, factor: float) -> mido.MidiFile:
    """Play ``factor`` times faster (``factor > 1``) or slower: every ``set_tempo`` is divided by ``factor``.

    A file without any ``set_tempo`` plays at MIDI's default 120 bpm; one is inserted at its start (the first
    track, or every track of a type 2 file) with the scaled tempo. Durations in seconds scale by ``1 / factor``
    (up to rounding to whole microseconds per beat).
    """
    mido = _mido()
    if not (np.isfinite(factor) and factor > 0):
        raise ValueError(f"tempo factor must be a positive number, not {factor!r}")

    def scaled(tempo: int) -> int:
        return int(min(MAX_TEMPO, max(1, round(tempo / factor))))

    out = _rebuild(mid, lambda m: m.copy(tempo=scaled(m.tempo)) if m.type == "set_tempo" else m)
    has = [any(m.type == "set_tempo" for m in tr) for tr in out.tracks]
    targets = [i for i, h in enumerate(has) if not h] if out.type == 2 else ([] if any(has) else [0])
    if not out.tracks:
        out.tracks.append(mido.MidiTrack())
    for i in targets:
        out.tracks[i].insert(0, mido.MetaMessage("set_tempo", tempo=scaled(DEFAULT_TEMPO), time=0))
    return out


def scale_velocity(mid: mido.MidiFile, factor: float) -> mido.MidiFile:
    """Multiply every note-on velocity by ``factor``, rounded and clipped to 1..127.

    Note-offs, and note-ons of velocity 0 (which end notes), are kept as they are, so no note appears or
    disappears.
    """
    if not (np.isfinite(factor) and factor > 0):
        raise ValueError(f"velocity factor must be a positive number, not {factor!r}")

    def one(msg):
        if msg.type == "note_on" and msg.velocity > 0:
            return msg.copy(velocity=int(min(127, max(1, round(msg.velocity * factor)))))
        return msg

    return _rebuild(mid, one)


def set_program(mid: mido.MidiFile, program: int) -> mido.MidiFile:
    """Play every non-drum channel with General MIDI ``program`` (0..127; 0 = Acoustic Grand Piano).

    Existing program changes on those channels are removed, and one program change is put at the start of the
    track where each channel's first note is.
    """
    mido = _mido()
    program = int(program)
    if not 0 <= program <= 127:
        raise ValueError(f"GM program must be in 0..127, not {program}")
    first_track: dict[int, int] = {}
    for i, tr in enumerate(mid.tracks):
        for msg in tr:
            if msg.type == "note_on" and msg.channel != DRUM_CHANNEL:
                first_track.setdefault(msg.channel, i)
    out = _rebuild(mid, lambda m: None if m.type == "program_change" and m.channel != DRUM_CHANNEL else m)
    for ch, i in sorted(first_track.items(), reverse=True):
        out.tracks[i].insert(0, mido.Message("program_change", channel=ch, program=program, time=0))
    return out


def transpose(mid: mido.MidiFile, semitones: int) -> mido.MidiFile:
    """Shift every pitched note by ``semitones``; a note that would leave 0..127 is moved back by octaves.

    ``key_signature`` meta messages are left as they are (synthesizers ignore them).
    """
    if int(semitones) != semitones:
        raise ValueError(f"transpose by a whole number of semitones, not {semitones!r}")
    s = int(semitones)
    return _map_pitches(mid, lambda p: p + s)


# ----------------------------------------------------------------------------------------------------------
# Key and mode
# ----------------------------------------------------------------------------------------------------------
class Key(NamedTuple):
    """An estimated key: ``tonic`` pitch class (0 = C ... 11 = B) and ``mode`` (``"major"`` / ``"minor"``)."""

    tonic: int
    mode: str

    @property
    def name(self) -> str:
        return f"{PITCH_NAMES[self.tonic]} {self.mode}"


def pitch_class_histogram(mid: mido.MidiFile) -> np.ndarray:
    """Total sounding time (seconds) of each pitch class over the non-drum notes, shape ``(12,)``."""
    hist = np.zeros(12)
    for n in notes(mid):
        if n.channel != DRUM_CHANNEL:
            hist[n.pitch % 12] += max(0.0, n.end_s - n.start_s)
    return hist


def estimate_key(mid: mido.MidiFile) -> Key:
    """The key whose Krumhansl-Kessler profile correlates best with the duration-weighted pitch-class histogram
    (the Krumhansl-Schmuckler algorithm). Ties go to major, then the lower tonic.

    Raises
    ------
    ValueError
        The file has no pitched notes.
    """
    hist = pitch_class_histogram(mid)
    if not hist.any():
        raise ValueError(f"{_name(mid)}: no pitched notes to estimate a key from")
    corr = key_correlations(hist)
    row, tonic = np.unravel_index(int(np.argmax(corr)), corr.shape)
    return Key(int(tonic), _MODES[int(row)])


#: scale degrees (semitones above the tonic) moved by a parallel-mode change, and the move
_MODE_SHIFTS = {"minor": ((4, 9, 11), -1), "major": ((3, 8, 10), +1)}


def to_mode(mid: mido.MidiFile, mode: str, *, key: Key | None = None) -> tuple[mido.MidiFile, Key]:
    """The parallel ``mode`` of a piece, keeping its tonic.

    To minor, the degrees 3, 6 and 7 of the (estimated) major key go down a semitone (E, A, B -> Eb, Ab, Bb in
    C); to major, the minor key's b3, b6 and b7 go up a semitone. Other notes, drums and timing are untouched;
    a piece already in ``mode`` comes back unchanged (as a copy).

    Parameters
    ----------
    mid : mido.MidiFile
    mode : {"major", "minor"}
    key : Key, optional
        The piece's key, if known; estimated with :func:`estimate_key` otherwise.

    Returns
    -------
    (mido.MidiFile, Key)
        The converted piece, and the key of the *input* (``key.mode == mode`` means nothing was changed).
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be 'major' or 'minor', not {mode!r}")
    key = estimate_key(mid) if key is None else Key(int(key[0]) % 12, str(key[1]))
    if key.mode == mode:
        return _rebuild(mid, lambda m: m), key
    degrees, step = _MODE_SHIFTS[mode]

    def move(p: int) -> int:
        return p + step if (p - key.tonic) % 12 in degrees else p

    return _map_pitches(mid, move), key


# ----------------------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------------------
def find_fluidsynth() -> str:
    """Path of the ``fluidsynth`` program on ``PATH``, or :class:`MissingToolError`."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise MissingToolError(f"fluidsynth not found: MIDI rendering needs it ({APT_FLUIDSYNTH})")
    return exe


def _soundfont_dirs() -> list[Path]:
    extra = [p for p in os.environ.get("MOODSCOPE_SOUNDFONTS", "").split(os.pathsep) if p]
    return [Path(d).expanduser() for d in (*extra, *SOUNDFONT_DIRS)]


def find_soundfont(name: str | os.PathLike = "FluidR3_GM") -> Path:
    """The ``.sf2``/``.sf3`` file of a soundfont: ``"FluidR3_GM"`` or ``"TimGM6mb"`` (case-insensitive; searched
    in ``$MOODSCOPE_SOUNDFONTS`` and :data:`SOUNDFONT_DIRS`), or a path to a soundfont file.

    Raises
    ------
    MissingToolError
        A named soundfont that is not installed (the message gives the Debian package), or a path that does
        not exist.
    """
    text = str(name)
    known = SOUNDFONTS.get(text.lower().removesuffix(".sf2"))
    if known is None:
        path = Path(text).expanduser()
        if path.is_file():
            return path
        names = ", ".join(v[0] for v in SOUNDFONTS.values())
        raise MissingToolError(f"soundfont {text} not found: give an existing .sf2 file or one of {names}")
    canonical, filename, package = known
    for d in _soundfont_dirs():
        if d.is_dir():
            for f in sorted(d.iterdir()):
                if f.name.lower() == filename.lower() and f.is_file():
                    return f
    raise MissingToolError(
        f"soundfont {canonical} not found: MIDI rendering with it needs "
        f"{package} (apt-get install -y --no-install-recommends {package})"
    )


def _has_notes(mid: mido.MidiFile) -> bool:
    return any(m.type == "note_on" and m.velocity > 0 for tr in mid.tracks for m in tr)


def render(
    midi: str | os.PathLike | mido.MidiFile,
    out_path: str | os.PathLike,
    *,
    soundfont: str | os.PathLike = "FluidR3_GM",
    sr: int = DEFAULT_SR,
    gain: float = DEFAULT_GAIN,
    reverb: bool = True,
    chorus: bool = False,
    mono: bool = True,
    trim_db: float | None = TRIM_DB,
    timeout_s: float | None = None,
) -> Path:
    """Render a MIDI file to audio with FluidSynth.

    Runs ``fluidsynth -ni -q -o synth.dynamic-sample-loading=1 -g GAIN -r SR -R 0|1 -C 0|1 -O float -T wav
    -F tmp.wav SOUNDFONT MIDI`` into a temporary folder, mixes the channels down (``mono=True``), cuts the
    trailing silence and writes ``out_path`` (``.wav`` or ``.flac``, 16-bit) atomically: a temporary file beside
    it, renamed over it when complete.
    Samples beyond +-1 are clipped (at :data:`DEFAULT_GAIN` EMOPIA's clips stay well below). FluidSynth pads
    its output with about 2.5 s of silence after the last note's release; with ``trim_db`` the audio ends
    0.1 s after the last sample within ``trim_db`` dB of the peak, so it lasts about :func:`midi_duration`
    plus the release of the last notes (a few tenths of a second for a piano).

    Parameters
    ----------
    midi : path or mido.MidiFile
        A ``MidiFile`` is written to a temporary ``.mid`` first.
    out_path : path
    soundfont : str or path
        ``"FluidR3_GM"``, ``"TimGM6mb"`` or a soundfont file (:func:`find_soundfont`).
    sr : int
        Sample rate, 8000-96000 Hz.
    gain : float
        FluidSynth's master gain, in (0, 10].
    reverb, chorus : bool
        FluidSynth's reverb and chorus effects.
    mono : bool
        Mix the stereo rendering down to one channel (the mean).
    trim_db : float or None
        Cut the trailing audio quieter than this many dB below the peak (``None`` keeps it all).
    timeout_s : float, optional
        Give up on a rendering that takes longer.

    Returns
    -------
    Path
        ``out_path``.

    Raises
    ------
    MissingToolError
        No ``fluidsynth`` program, no soundfont, or no ``mido``.
    AudioError
        The MIDI cannot be read, has no notes, or FluidSynth fails on it or renders silence (one line naming
        the file).
    """
    out_path = Path(out_path)
    fmt = _FORMATS.get(out_path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{out_path}: render writes .wav or .flac, not {out_path.suffix or 'no extension'}")
    if not 8000 <= int(sr) <= 96000:
        raise ValueError(f"sample rate must be 8000-96000 Hz, not {sr}")
    if not (np.isfinite(gain) and 0 < gain <= 10):
        raise ValueError(f"gain must be in (0, 10], not {gain!r}")
    exe = find_fluidsynth()
    sf2 = find_soundfont(soundfont)
    import soundfile as sf

    name = _name(midi)
    mid = _as_midi(midi)
    if not _has_notes(mid):
        raise AudioError(name, "no notes to render")
    with tempfile.TemporaryDirectory(prefix="moodscope-midi-") as tmp:
        if isinstance(midi, (str, os.PathLike)):
            src = str(midi)
        else:
            src = os.path.join(tmp, "in.mid")
            try:
                mid.save(src)
            except (ValueError, TypeError, OverflowError) as e:
                raise AudioError(name, f"cannot be written as a MIDI file ({e})") from None
        wav = os.path.join(tmp, "out.wav")
        # dynamic sample loading: only the samples the piece plays are read (FluidR3_GM: 45 instead of 170 MB of
        # memory per process, the same samples out)
        cmd = [exe, "-ni", "-q", "-o", "synth.dynamic-sample-loading=1", "-g", f"{gain:g}", "-r", str(int(sr)),
               "-R", str(int(bool(reverb))), "-C", str(int(bool(chorus))), "-O", "float", "-T", "wav", "-F", wav,
               str(sf2), src]  # fmt: skip
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL
            )
        except FileNotFoundError:
            raise MissingToolError(
                f"fluidsynth not found: MIDI rendering needs it ({APT_FLUIDSYNTH})"
            ) from None
        except subprocess.TimeoutExpired:
            raise AudioError(name, f"fluidsynth did not finish within {timeout_s:g} s") from None
        if proc.returncode != 0 or not os.path.isfile(wav) or os.path.getsize(wav) == 0:
            lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
            why = lines[-1] if lines else "no output file"
            raise AudioError(name, f"fluidsynth failed (exit {proc.returncode}): {why}")
        try:
            y, file_sr = sf.read(wav, dtype="float32", always_2d=True)
        except (RuntimeError, sf.LibsndfileError) as e:  # pragma: no cover - fluidsynth wrote a broken file
            raise AudioError(name, f"fluidsynth wrote an unreadable file ({e})") from None
    if y.shape[0] == 0 or not np.any(np.abs(y) > 1e-8):
        raise AudioError(name, "fluidsynth rendered silence (no sounding notes for this soundfont?)")
    if mono:
        y = y.mean(axis=1)
    if trim_db is not None:
        level = np.abs(y).max(axis=1) if y.ndim == 2 else np.abs(y)
        loud = np.flatnonzero(level >= level.max() * 10 ** (-float(trim_db) / 20))
        y = y[: min(len(y), int(loud[-1]) + 1 + int(round(0.1 * file_sr)))]
    y = np.clip(y, -1.0, 1.0)
    with atomic_path(out_path) as tmp_out:
        sf.write(str(tmp_out), y, int(file_sr), format=fmt, subtype="PCM_16")
    return out_path


# ----------------------------------------------------------------------------------------------------------
# Rendering variants
# ----------------------------------------------------------------------------------------------------------
def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+]+", "_", text)


@dataclass(frozen=True)
class RenderVariant:
    """One way of turning MIDI into audio: what to change in the MIDI, then how FluidSynth renders it.

    Attributes
    ----------
    soundfont : str
        ``"FluidR3_GM"``, ``"TimGM6mb"`` or a path to an ``.sf2`` file.
    program : int or None
        General MIDI program for every non-drum channel (0 = Acoustic Grand Piano); ``None`` keeps the file's.
    velocity : float
        Note-on velocity factor (:func:`scale_velocity`); 1 keeps them.
    tempo : float
        Tempo factor (:func:`scale_tempo`), > 1 faster; 1 keeps it.
    reverb : bool
    gain : float
    sr : int
    mode : {None, "major", "minor"}
        Parallel-mode conversion (:func:`to_mode`) with the estimated key; ``None`` keeps the piece as it is.
    chorus : bool
    """

    soundfont: str = "FluidR3_GM"
    program: int | None = 0
    velocity: float = 1.0
    tempo: float = 1.0
    reverb: bool = True
    gain: float = DEFAULT_GAIN
    sr: int = DEFAULT_SR
    mode: str | None = None
    chorus: bool = False

    def __post_init__(self):
        if self.program is not None and not 0 <= int(self.program) <= 127:
            raise ValueError(f"program must be None or 0..127, not {self.program!r}")
        for what in ("velocity", "tempo"):
            v = getattr(self, what)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
                raise ValueError(f"{what} factor must be a positive number, not {v!r}")
        if not (isinstance(self.gain, (int, float)) and 0 < self.gain <= 10):
            raise ValueError(f"gain must be in (0, 10], not {self.gain!r}")
        if not 8000 <= int(self.sr) <= 96000:
            raise ValueError(f"sample rate must be 8000-96000 Hz, not {self.sr!r}")
        if self.mode not in (None, *_MODES):
            raise ValueError(f"mode must be None, 'major' or 'minor', not {self.mode!r}")

    def soundfont_label(self) -> str:
        """``FluidR3_GM`` / ``TimGM6mb`` for the named soundfonts; a file's stem plus a hash of its path."""
        known = SOUNDFONTS.get(str(self.soundfont).lower().removesuffix(".sf2"))
        if known is not None:
            return known[0]
        path = str(Path(str(self.soundfont)).expanduser().resolve())
        return f"{_safe(Path(path).stem)}.{hashlib.sha1(path.encode()).hexdigest()[:8]}"

    def key(self) -> str:
        """A stable, file-name-safe string naming this variant, e.g.
        ``FluidR3_GM-sr22050-g0.5-p0-v1-t1-rev-r1`` (``-minor``/``-major`` with a mode, ``-cho`` with chorus,
        ``-dry`` without reverb, ``pkeep`` when the file's programs are kept; ``r1`` is :data:`RENDER_VERSION`).
        """
        parts = [
            self.soundfont_label(),
            f"sr{int(self.sr)}",
            f"g{float(self.gain):g}",
            "pkeep" if self.program is None else f"p{int(self.program)}",
            f"v{float(self.velocity):g}",
            f"t{float(self.tempo):g}",
            "rev" if self.reverb else "dry",
        ]
        if self.chorus:
            parts.append("cho")
        if self.mode:
            parts.append(self.mode)
        parts.append(f"r{RENDER_VERSION}")
        return "-".join(parts)

    @property
    def changes_midi(self) -> bool:
        """Whether :meth:`apply` changes anything but the program."""
        return self.mode is not None or self.velocity != 1 or self.tempo != 1

    def apply(self, mid: mido.MidiFile) -> mido.MidiFile:
        """The MIDI transforms of this variant: mode, then program, velocity and tempo (a new file)."""
        out = mid
        if self.mode is not None:
            out, _ = to_mode(out, self.mode)
        if self.program is not None:
            out = set_program(out, int(self.program))
        if self.velocity != 1:
            out = scale_velocity(out, float(self.velocity))
        if self.tempo != 1:
            out = scale_tempo(out, float(self.tempo))
        return out if out is not mid else _rebuild(mid, lambda m: m)

    def render(
        self, midi: str | os.PathLike | mido.MidiFile, out_path: str | os.PathLike, *, timeout_s=None
    ) -> Path:
        """Apply the transforms and :func:`render` with this variant's settings."""
        mid = _as_midi(midi)
        src = mid if (self.program is None and not self.changes_midi) else self.apply(mid)
        if src is mid and isinstance(midi, (str, os.PathLike)):
            src = midi  # nothing to change: fluidsynth reads the file itself
        elif src is not mid:
            src.filename = _name(midi)  # errors name the original file
        return render(
            src,
            out_path,
            soundfont=self.soundfont,
            sr=int(self.sr),
            gain=float(self.gain),
            reverb=bool(self.reverb),
            chorus=bool(self.chorus),
            timeout_s=timeout_s,
        )


__all__ = [
    "DEFAULT_GAIN",
    "DEFAULT_SR",
    "Key",
    "Note",
    "RenderVariant",
    "estimate_key",
    "find_fluidsynth",
    "find_soundfont",
    "key_correlations",
    "midi_duration",
    "notes",
    "pitch_class_histogram",
    "read_midi",
    "render",
    "scale_tempo",
    "scale_velocity",
    "set_program",
    "to_mode",
    "transpose",
]
