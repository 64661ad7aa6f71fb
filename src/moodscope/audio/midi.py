"""MIDI in: transforms of a :class:`mido.MidiFile`, key estimation, parallel-mode conversion (rendering to audio
with the FluidSynth program: :mod:`moodscope.audio.midi_render`).

Transforms take a ``mido.MidiFile`` and return a new one (the input is never changed; every message is
copied). Channel 10 (index 9) is General MIDI percussion and is left alone by every pitch and program
transform.

- :func:`scale_tempo` (``factor > 1`` is faster), :func:`scale_velocity`, :func:`set_program`,
  :func:`transpose`;
- :func:`estimate_key`: Krumhansl-Kessler key profiles correlated with the duration-weighted pitch-class
  histogram; :func:`to_mode`: the parallel major or minor, keeping the tonic;

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
>>> from moodscope.audio.midi_render import render
>>> render(minor, "out.flac", soundfont="TimGM6mb", sr=22050)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..errors import AudioError, MissingToolError
from .tonal import KK_MAJOR, KK_MINOR, PITCH_NAMES, key_correlations  # noqa: F401  (part of this API)

if TYPE_CHECKING:  # pragma: no cover
    import mido

#: General MIDI percussion channel (channel 10, index 9): no pitch, program or key transform touches it.
DRUM_CHANNEL = 9
#: MIDI's default tempo when a file has no ``set_tempo``: 500,000 us per beat = 120 bpm.
DEFAULT_TEMPO = 500_000
#: Largest tempo a ``set_tempo`` message can hold (24 bits, us per beat).
MAX_TEMPO = 0xFFFFFF


MODES = ("major", "minor")


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


def as_midi(midi: str | os.PathLike | mido.MidiFile) -> mido.MidiFile:
    return read_midi(midi) if isinstance(midi, (str, os.PathLike)) else midi


def midi_name(midi) -> str:
    if isinstance(midi, (str, os.PathLike)):
        return str(midi)
    return str(getattr(midi, "filename", None) or "<MidiFile>")


def midi_duration(midi: str | os.PathLike | mido.MidiFile) -> float:
    """Length in seconds up to the last event (tempo changes included), as ``mido.MidiFile.length``.

    A rendering is longer by the release of the last notes (about 2-3 s with FluidR3_GM).
    """
    mid = as_midi(midi)
    try:
        return float(mid.length)
    except ValueError as e:  # type 2 (asynchronous tracks)
        raise AudioError(midi_name(midi), f"cannot compute the length ({e})") from None


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
def rebuild(mid: mido.MidiFile, fn: Callable[[mido.Message], mido.Message | None]) -> mido.MidiFile:
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

    return rebuild(mid, one)


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

    out = rebuild(mid, lambda m: m.copy(tempo=scaled(m.tempo)) if m.type == "set_tempo" else m)
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

    return rebuild(mid, one)


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
    out = rebuild(mid, lambda m: None if m.type == "program_change" and m.channel != DRUM_CHANNEL else m)
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
        raise ValueError(f"{midi_name(mid)}: no pitched notes to estimate a key from")
    corr = key_correlations(hist)
    row, tonic = np.unravel_index(int(np.argmax(corr)), corr.shape)
    return Key(int(tonic), MODES[int(row)])


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
    if mode not in MODES:
        raise ValueError(f"mode must be 'major' or 'minor', not {mode!r}")
    key = estimate_key(mid) if key is None else Key(int(key[0]) % 12, str(key[1]))
    if key.mode == mode:
        return rebuild(mid, lambda m: m), key
    degrees, step = _MODE_SHIFTS[mode]

    def move(p: int) -> int:
        return p + step if (p - key.tonic) % 12 in degrees else p

    return _map_pitches(mid, move), key


__all__ = [
    "MODES",
    "Key",
    "Note",
    "as_midi",
    "estimate_key",
    "key_correlations",
    "midi_duration",
    "midi_name",
    "notes",
    "pitch_class_histogram",
    "read_midi",
    "rebuild",
    "scale_tempo",
    "scale_velocity",
    "set_program",
    "to_mode",
    "transpose",
]
