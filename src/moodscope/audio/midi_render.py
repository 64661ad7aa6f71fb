"""Rendering MIDI to audio with the FluidSynth program (for MIDI datasets such as EMOPIA and VGMIDI): finding
the ``fluidsynth`` binary and a soundfont, :func:`render` (one MIDI, a path or a ``MidiFile``, to a WAV/FLAC file,
written atomically), :class:`RenderVariant` (one rendering set-up with a stable key for cache paths).

A missing ``fluidsynth`` binary or soundfont raises :class:`~moodscope.errors.MissingToolError` naming the Debian
package (``apt-get install -y --no-install-recommends fluidsynth fluid-soundfont-gm``); a MIDI file that cannot be
rendered raises :class:`~moodscope.errors.AudioError` naming the file and the cause. The MIDI transforms a
variant applies are :mod:`moodscope.audio.midi`'s.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import AudioError, MissingToolError
from ..fileio import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    import mido

from .midi import MODES, as_midi, midi_name, rebuild, scale_tempo, scale_velocity, set_program, to_mode

#: how to install what rendering needs (Debian)
APT_FLUIDSYNTH = "apt-get install -y --no-install-recommends fluidsynth fluid-soundfont-gm"
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

    name = midi_name(midi)
    mid = as_midi(midi)
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
        if self.mode not in (None, *MODES):
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
        return out if out is not mid else rebuild(mid, lambda m: m)

    def render(
        self, midi: str | os.PathLike | mido.MidiFile, out_path: str | os.PathLike, *, timeout_s=None
    ) -> Path:
        """Apply the transforms and :func:`render` with this variant's settings."""
        mid = as_midi(midi)
        src = mid if (self.program is None and not self.changes_midi) else self.apply(mid)
        if src is mid and isinstance(midi, (str, os.PathLike)):
            src = midi  # nothing to change: fluidsynth reads the file itself
        elif src is not mid:
            src.filename = midi_name(midi)  # errors name the original file
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
    "APT_FLUIDSYNTH",
    "DEFAULT_GAIN",
    "DEFAULT_SR",
    "RENDER_VERSION",
    "SOUNDFONTS",
    "SOUNDFONT_DIRS",
    "TRIM_DB",
    "RenderVariant",
    "find_fluidsynth",
    "find_soundfont",
    "render",
]
