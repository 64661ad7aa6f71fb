r"""The built-in synthetic labelled corpus: music-like audio whose emotion is known by construction.

:func:`synthesize` writes a small data set in the generic layout (``audio/``, ``static.csv``,
``dynamic.csv``, ``tags.csv``, ``dataset.yaml``, plus ``cues.csv``) so that training, evaluation and the
demo run on a fresh machine with no download. :func:`render_clip` renders one clip from 2 Hz valence
and arousal curves and is what cue-isolation tests use (``cue_overrides`` pins one cue).

How a clip is made
------------------
1. **Labels.** Valence *V(t)* and arousal *A(t)* are drawn independently of each other: each clip has
   its own mood per axis (uniform in +-0.5, so static labels differ between clips and static models have
   something to learn), and its curve moves around that mood through random control points 5-11 s apart
   (cosine interpolation) within +-0.7 of it and within [-0.9, 0.9], each step moving at least 0.5, so
   a clip sweeps about half of the axis. The 2 Hz value *i* is the curve at the centre of
   the segment ``[0.5 i, 0.5 (i + 1))``. The labels are the ground truth.
2. **Cues.** Each label drives several musical cues taken from the music-emotion literature
   (Gabrielsson & Lindström 2010; Juslin & Laukka 2003; Eerola, Friberg & Bresin 2013, whose cue model is
   linear and additive). Cue *k* of label *L* is ``c_k(t) = clip(L(t) + e_k(t), -1, 1)`` where the jitter
   ``e_k`` is a per-clip offset (std ``jitter_clip``) plus a smooth random curve with control points 3-8 s
   apart (std ``jitter_time``), drawn independently per cue and then centred across the cues of the same
   label so that ``sum_k w_k e_k = 0``. Hence the label is exactly the weighted mix ``L = sum_k w_k c_k``
   (up to clipping) while no single cue follows it closely: a listener (or model) must combine cues.
   Arousal cues never depend on valence and vice versa, so loudness, tempo, brightness... carry no
   valence information and mode, register... carry no arousal information.
3. **Music.** A chord every two beats (roots from a per-clip progression over a random key), a pad
   re-struck on beats, 8ths or 16ths, an FM lead melody on a 16th-note grid, a bass and a drum kit of
   noise bursts are scheduled from the cue curves (each event reads the cues at its onset) and rendered
   by inverse-FFT additive synthesis (pad, bass), 2-operator FM (lead) and filtered noise (drums). The
   tonal material sits where 128 mel bands at 44.1 kHz resolve a semitone (pad around A4 in root
   position with the third doubled an octave up, lead around A5: mostly above 500 Hz, harmonics above
   1 kHz); the bass (root only) carries no mode information.
4. **Level.** The drum bus is set to a cue-given ratio of the tonal bus, then a slowly varying gain
   (1 s RMS smoothing) makes the mix follow the loudness cue (-30 to -18 dBFS RMS). Instead of scaling
   each clip to its peak, a soft-knee limiter squashes the rare samples above 0.8 (tanh, peak < 0.99;
   about 1e-5 of the samples), so loudness is an absolute cue within and across clips.

Cue table (``c`` is the cue value in [-1, 1]; ``u = (c + 1) / 2`` in [0, 1])

=============  =========  ======  ===========  ===========  ===============================================
cue            driven by  weight  jitter_clip  jitter_time  rendering, from c = -1 to c = +1
=============  =========  ======  ===========  ===========  ===============================================
tempo          arousal    0.25    0.25         0.55         74 -> 158 BPM (``108 * 2**(0.55 c)``)
density        arousal    0.20    0.25         0.55         lead notes per beat 0.17 -> 2.8 (16th grid);
                                                            pad struck per beat / 8th / 16th (u <= 0.4,
                                                            <= 0.8, above); bass per 2 beats -> 8ths
loudness       arousal    0.20    0.25         0.55         mix RMS -30 -> -18 dBFS (1 s smoothing)
brightness     arousal    0.20    0.25         0.55         harmonic roll-off ``k**-2.8 -> k**-0.9``
                                                            (+-0.2 per clip), FM index 0.3 -> 3.5
percussion     arousal    0.15    0.25         0.55         drums -24 -> 0 dB re tonal RMS; snare from
                                                            u > 0.25, 8th hats u > 0.4, kick on every
                                                            beat u > 0.6, 16th hats u > 0.75
mode           valence    0.30    0.25         0.55         share of major chords
                                                            ``clip(0.5 + 0.8 c, 0, 1)``, drawn per chord:
                                                            all minor for c <= -0.625, all major for
                                                            c >= 0.625; lead uses that chord's scale
consonance     valence    0.25    0.25         0.55         dissonance ``d = 1 - u``: detuned doubling of
                                                            pad and lead (0 -> 30 cents: beating),
                                                            tritone + minor 9th added to the pad
                                                            (amplitude ``0.7 clip((d - 0.3) / 0.7)``),
                                                            chromatic lead notes (probability ``0.35 d``)
register       valence    0.25    0.25         0.55         pad root within +-6 of MIDI 63 -> 75, lead
                                                            around MIDI 74 -> 88 (+-2 per clip)
articulation   valence    0.20    0.25         0.55         legato -> staccato: note length 1.1 -> 0.2 of
                                                            the inter-onset interval, attack 60 -> 3 ms
                                                            (lead: 12 -> 3 ms), release 0.25 -> 0.04 s
=============  =========  ======  ===========  ===========  ===============================================

Directions follow the reviews above: faster, denser, louder, brighter and more percussive music is
heard as more aroused; major mode, consonance, higher register and staccato as more positive.
Weights are normalised per label (they sum to 1). Every clip also draws its own key, chord progression,
timbres (harmonic jitter, FM ratio), mix balance (+-2 dB) and drum sounds.

Tags
----
``tags.csv`` is multi-label from the V-A quadrant of the written 2 Hz curve: a tag is 1 when the clip
spends at least 25 % of its segments in that quadrant (happy V > 0, A > 0; angry V <= 0, A > 0;
sad V <= 0, A <= 0; calm V > 0, A <= 0 -- a value of exactly 0 counts as negative).

Examples
--------
>>> import numpy as np
>>> from moodscope.datasets.corpus import render_clip
>>> v = np.linspace(-0.8, 0.8, 20)          # 10 s at 2 Hz
>>> a = np.zeros(20)
>>> y, cues = render_clip(v, a, seed=1, cue_overrides={"mode": 1.0})
>>> y.shape, y.dtype, sorted(cues)[:3]
((441000,), dtype('float32'), ['arousal', 'articulation', 'brightness'])
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import fft as sp_fft
from scipy import signal

from ..config import SEGMENT_S
from ..emotion import QUADRANT_TAGS, quadrant_index
from ..errors import DatasetError

__all__ = [
    "CUES",
    "GENERATOR_VERSION",
    "TAG_NAMES",
    "Cue",
    "label_curves",
    "quadrant_tags",
    "render_clip",
    "synthesize",
]

GENERATOR_VERSION = "1.1"  #: bumped whenever the same arguments would render different audio
CONTROL_RATE = 100  #: Hz, rate of the internal cue curves
TAG_NAMES = QUADRANT_TAGS
MOOD_RANGE = 0.5  #: a clip's mood (centre of its curve) is uniform in +-MOOD_RANGE, per label
SWING = 0.7  #: control points lie within +-SWING of the clip's mood (and within +-limit)
MIN_STEP = 0.5  #: successive control points differ by at least this much
TAG_MIN_FRACTION = 0.25  #: fraction of segments in a quadrant needed for its tag
_FORMATS = {"wav": "WAV", "flac": "FLAC"}
_KNEE = 0.8  # soft limiter threshold


@dataclass(frozen=True)
class Cue:
    """One musical cue: which label drives it, its weight in that label's mix, its jitter, its rendering."""

    name: str
    label: str  # "valence" or "arousal"
    weight: float
    jitter_clip: float
    jitter_time: float
    rendering: str


CUES: tuple[Cue, ...] = (
    Cue("tempo", "arousal", 0.25, 0.25, 0.55, "74 -> 158 BPM"),
    Cue(
        "density",
        "arousal",
        0.20,
        0.25,
        0.55,
        "0.17 -> 2.8 lead notes per beat; pad per beat -> 16ths; bass per 2 beats -> 8ths",
    ),
    Cue("loudness", "arousal", 0.20, 0.25, 0.55, "mix RMS -30 -> -18 dBFS"),
    Cue("brightness", "arousal", 0.20, 0.25, 0.55, "harmonic roll-off k^-2.8 -> k^-0.9, FM index 0.3 -> 3.5"),
    Cue("percussion", "arousal", 0.15, 0.25, 0.55, "drums -24 -> 0 dB re tonal bus, busier pattern"),
    Cue(
        "mode",
        "valence",
        0.30,
        0.25,
        0.55,
        "share of major chords clip(0.5 + 0.8 c, 0, 1); lead in the chord's scale",
    ),
    Cue(
        "consonance",
        "valence",
        0.25,
        0.25,
        0.55,
        "detuning 30 -> 0 cents, added tritone/minor 9th, chromatic notes",
    ),
    Cue("register", "valence", 0.25, 0.25, 0.55, "pad root around MIDI 63 -> 75, lead around MIDI 74 -> 88"),
    Cue("articulation", "valence", 0.20, 0.25, 0.55, "legato -> staccato (note length 1.1 -> 0.2 of IOI)"),
)
_CUE_NAMES = tuple(c.name for c in CUES)


# ----------------------------------------------------------------------------------------------- curves


def _cosine_curve(knot_t: np.ndarray, knot_v: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Cosine interpolation through knots (no overshoot); ``t`` must lie within the knots' span."""
    k = np.clip(np.searchsorted(knot_t, t, side="right") - 1, 0, len(knot_t) - 2)
    u = (t - knot_t[k]) / (knot_t[k + 1] - knot_t[k])
    w = 0.5 - 0.5 * np.cos(np.pi * np.clip(u, 0.0, 1.0))
    return knot_v[k] + w * (knot_v[k + 1] - knot_v[k])


def _knot_times(rng: np.random.Generator, duration: float, gap: tuple[float, float]) -> np.ndarray:
    times = [-rng.uniform(0.0, gap[1])]
    while times[-1] <= duration:
        times.append(times[-1] + rng.uniform(*gap))
    return np.asarray(times)


def label_curves(
    n_steps: int, *, seed: int | Sequence[int] = 0, limit: float = 0.9
) -> tuple[np.ndarray, np.ndarray]:
    """Draw random smooth 2 Hz valence and arousal curves (independent of each other).

    Each label gets a clip mood ``m`` uniform in ``+-MOOD_RANGE`` (scaled by ``limit / 0.9``); control
    points lie 5-11 s apart within ``[m - SWING, m + SWING]`` and ``[-limit, limit]``, successive points
    differing by at least ``MIN_STEP``; cosine interpolation between them. Value *i* is the curve at the centre of the
    segment ``[0.5 i, 0.5 (i + 1))``.

    Parameters
    ----------
    n_steps : int > 0
        Number of 0.5 s steps (a 45 s clip has 90).
    seed : int or sequence of int
        Seed of the random generator.
    limit : float in (0.3, 1]
        Bound of the control points.

    Returns
    -------
    valence, arousal : np.ndarray [shape=(n_steps,)], float64
    """
    if n_steps <= 0:
        raise ValueError(f"n_steps must be positive, not {n_steps}")
    if not 0.3 < limit <= 1.0:
        raise ValueError(f"limit must be in (0.3, 1], not {limit}")
    rng = np.random.default_rng(seed)
    duration = n_steps * SEGMENT_S
    centres = (np.arange(n_steps) + 0.5) * SEGMENT_S
    out = []
    for _ in range(2):
        # a per-clip mood (so static labels differ between clips) plus a wide movement around it
        mood = rng.uniform(-MOOD_RANGE, MOOD_RANGE) * limit / 0.9
        lo, hi = max(-limit, mood - SWING), min(limit, mood + SWING)
        kt = _knot_times(rng, duration, (5.0, 11.0))
        kv = [rng.uniform(lo, hi)]
        for _ in range(len(kt) - 1):
            while True:
                v = rng.uniform(lo, hi)
                if abs(v - kv[-1]) >= MIN_STEP:
                    break
            kv.append(v)
        out.append(_cosine_curve(kt, np.asarray(kv), centres))
    return out[0], out[1]


def _smooth_noise(rng: np.random.Generator, t: np.ndarray, gap: tuple[float, float]) -> np.ndarray:
    kt = _knot_times(rng, float(t[-1]) + 1e-9, gap)
    return _cosine_curve(kt, rng.standard_normal(len(kt)), t)


def _to_control(values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """2 Hz values (at segment centres) -> control-rate curve by linear interpolation."""
    centres = (np.arange(len(values)) + 0.5) * SEGMENT_S
    return np.interp(t, centres, values)


def _cue_curves(
    valence: np.ndarray,
    arousal: np.ndarray,
    t: np.ndarray,
    rng: np.random.Generator,
    overrides: Mapping[str, float | np.ndarray] | None,
    jitter: float = 1.0,
) -> dict[str, np.ndarray]:
    labels = {"valence": _to_control(valence, t), "arousal": _to_control(arousal, t)}
    # Raw jitter for every cue, always drawn in the same order (overrides do not shift the stream).
    raw = {
        c.name: jitter
        * (c.jitter_clip * rng.standard_normal() + c.jitter_time * _smooth_noise(rng, t, (3.0, 8.0)))
        for c in CUES
    }
    cues: dict[str, np.ndarray] = {}
    for label, curve in labels.items():
        group = [c for c in CUES if c.label == label]
        w = np.array([c.weight for c in group])
        w = w / w.sum()
        mean_noise = sum(wi * raw[c.name] for wi, c in zip(w, group))
        for c in group:
            cues[c.name] = np.clip(curve + raw[c.name] - mean_noise, -1.0, 1.0)
    for name, value in (overrides or {}).items():
        if name not in cues:
            raise ValueError(f"unknown cue {name!r} in cue_overrides; known: {', '.join(_CUE_NAMES)}")
        value = np.asarray(value, dtype=np.float64)
        if value.ndim == 0:
            curve = np.full_like(t, float(value))
        elif value.shape == valence.shape:
            curve = _to_control(value, t)
        else:
            raise ValueError(
                f"cue_overrides[{name!r}] must be a scalar or have the labels' shape {valence.shape}, "
                f"not {value.shape}"
            )
        if not np.all(np.isfinite(curve)):
            raise ValueError(f"cue_overrides[{name!r}] contains NaN or inf")
        cues[name] = np.clip(curve, -1.0, 1.0)
    return cues


# -------------------------------------------------------------------------------------------- synthesis


def _lerp(a: float, b: float, u: float | np.ndarray) -> float | np.ndarray:
    return a + (b - a) * u


def _midi_hz(m: float | np.ndarray) -> float | np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(m) - 69.0) / 12.0)


class _Synth:
    """Renders the notes and drum sounds of one clip into float32 buses."""

    def __init__(self, n_samples: int, sr: int, rng: np.random.Generator):
        self.sr = sr
        self.n = n_samples
        self.pad_phases = rng.uniform(0, 2 * np.pi, 64)
        self.bass_phases = rng.uniform(0, 2 * np.pi, 64)
        self.pad_jitter = np.exp(0.35 * rng.standard_normal(64))
        self.bass_jitter = np.exp(0.25 * rng.standard_normal(64))
        self.fm_ratio = float(rng.choice([1.0, 1.0, 2.0]))

    def partials(self, kind: str, f0: float, slope: float) -> np.ndarray:
        """Amplitudes of the harmonics ``k = 1..K`` (``k**-slope`` with per-clip jitter), below 16 kHz.

        Normalised so that the harmonic tone has the RMS of a unit-amplitude sine.
        """
        n_harm = max(1, int(min(60, min(16000.0, 0.45 * self.sr) // f0)))
        jit = self.pad_jitter if kind == "pad" else self.bass_jitter
        amps = np.arange(1, n_harm + 1) ** (-slope) * jit[:n_harm]
        return amps / np.sqrt(np.sum(amps**2))

    def envelope(self, n_on: int, att: float, dec: float, sus: float, rel: float) -> np.ndarray:
        """Attack-decay-sustain for ``n_on`` samples, then an exponential release (3 time constants)."""
        sr = self.sr
        n_rel = int(3.0 * rel * sr)
        n_att = min(max(1, int(att * sr)), n_on + n_rel)
        t = np.arange(n_on + n_rel, dtype=np.float32) / np.float32(sr)
        env = np.empty(n_on + n_rel, dtype=np.float32)
        env[:n_att] = t[:n_att] / np.float32(max(att, 1.0 / sr))
        env[n_att:] = sus + (1.0 - sus) * np.exp((att - t[n_att:]) / np.float32(dec))
        if n_rel:
            level = env[n_on - 1]
            env[n_on:] = level * np.exp((t[n_on - 1] - t[n_on:]) / np.float32(rel))
            env[-n_rel:] *= np.linspace(1.0, 0.0, n_rel, dtype=np.float32)  # no click at the cut
        return env

    def _add(self, bus: np.ndarray, start: int, y: np.ndarray) -> None:
        if start >= self.n:
            return
        end = min(self.n, start + len(y))
        bus[start:end] += y[: end - start]

    def _phase(self, f: float, n: int, offset: float) -> np.ndarray:
        """Phase accumulator as uint32 (one cycle = 2**32; wraps exactly), starting at ``offset`` cycles."""
        inc = np.uint32(int(round(f / self.sr * 2.0**32)) % 2**32)
        return np.arange(n, dtype=np.uint32) * inc + np.uint32(int(offset % 1.0 * 2.0**32) % 2**32)

    def additive_chord(self, bus, kind, start, voices, env, slope, detune_cents) -> None:
        """Harmonic voices ``[(midi, amp), ...]`` sharing one envelope, by inverse-FFT additive synthesis.

        Every partial of every voice is one spectral line of an inverse real FFT whose length gives at
        most 1 Hz between bins (each partial lands within 0.5 Hz of its frequency); ``detune_cents > 0``
        doubles each voice at +-detune/2 cents, which beats (roughness); both copies start in phase, so a
        detuning too small to separate the bins leaves the level unchanged.
        """
        n = len(env)
        size = sp_fft.next_fast_len(max(n, self.sr), real=True)
        spec = np.zeros(size // 2 + 1, dtype=np.complex128)
        phases = self.pad_phases if kind == "pad" else self.bass_phases
        for m, amp in voices:
            f0 = float(_midi_hz(m))
            amps = self.partials(kind, f0, slope)
            k = np.arange(1, len(amps) + 1)
            ratios = (
                [1.0] if detune_cents <= 0.05 else [2 ** (-detune_cents / 2400), 2 ** (detune_cents / 2400)]
            )
            for r in ratios:
                bins = np.rint(k * f0 * r * size / self.sr).astype(np.int64)
                lines = (amp / len(ratios) * size) * amps * np.exp(1j * (phases[: len(amps)] + 0.3 * m))
                np.add.at(spec, bins, lines)
        y = sp_fft.irfft(spec.astype(np.complex64), size, workers=1)[:n]
        y *= env
        self._add(bus, start, y)

    def fm_note(self, bus, start, f0, env, index, amp, detune_cents=0.0) -> None:
        """Two-operator FM (carrier ``f0``, modulator ``ratio * f0``), index following the envelope."""
        n = len(env)
        r = self.fm_ratio
        index = min(index, max(0.0, (16000.0 - f0) / (r * f0) - 1.0))
        idx = np.float32(index) * (np.float32(0.35) + np.float32(0.65) * env)
        freqs = (
            [f0]
            if detune_cents <= 0.05
            else [f0 * 2 ** (-detune_cents / 2400), f0 * 2 ** (detune_cents / 2400)]
        )
        y = np.zeros(n, dtype=np.float32)
        to_rad = np.float32(2 * np.pi / 2.0**32)
        for f in freqs:
            mod = np.sin(self._phase(r * f, n, 0.0).astype(np.float32) * to_rad)
            mod *= idx
            mod += self._phase(f, n, 0.0).astype(np.float32) * to_rad
            y += np.sin(mod)
        self._add(bus, start, np.float32(amp / len(freqs)) * env * y)

    def drum_kit(self, rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
        """Three variants of kick, snare and closed hat from sine sweeps and filtered noise bursts."""
        sr = self.sr
        kit: dict[str, list[np.ndarray]] = {"kick": [], "snare": [], "hat": []}
        sos_snare = signal.butter(2, [1500, 6000], btype="bandpass", fs=sr, output="sos")
        sos_hat = signal.butter(4, 7000, btype="highpass", fs=sr, output="sos")
        for _ in range(3):
            t = np.arange(int(0.35 * sr)) / sr
            f = rng.uniform(42, 55) + rng.uniform(70, 110) * np.exp(-t / 0.035)
            kick = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / rng.uniform(0.12, 0.2))
            kit["kick"].append(kick)
            t = np.arange(int(0.22 * sr)) / sr
            noise = signal.sosfilt(sos_snare, rng.standard_normal(len(t)))
            body = np.sin(2 * np.pi * rng.uniform(170, 220) * t) * np.exp(-t / 0.04)
            snare = 3.0 * noise * np.exp(-t / rng.uniform(0.05, 0.09)) + 0.6 * body
            kit["snare"].append(snare)
            t = np.arange(int(0.08 * sr)) / sr
            hat = signal.sosfilt(sos_hat, rng.standard_normal(len(t))) * np.exp(-t / rng.uniform(0.012, 0.03))
            kit["hat"].append(2.0 * hat)
        return {k: [x.astype(np.float32) for x in v] for k, v in kit.items()}


def _smoothed_power(x: np.ndarray, hop: int, width_frames: int) -> np.ndarray:
    """Mean power per hop-sized frame, smoothed with a Hann window of ``width_frames`` frames."""
    n_frames = int(np.ceil(len(x) / hop))
    pad = np.zeros(n_frames * hop)
    pad[: len(x)] = x
    p = np.mean(pad.reshape(n_frames, hop) ** 2, axis=1)
    win = np.hanning(width_frames + 2)[1:-1]
    win /= win.sum()
    padded = np.pad(p, width_frames // 2, mode="reflect") if n_frames > width_frames else p
    sm = np.convolve(padded, win, mode="same")
    if n_frames > width_frames:
        sm = sm[width_frames // 2 : width_frames // 2 + n_frames]
    return sm


def _frames_to_samples(g: np.ndarray, hop: int, n: int) -> np.ndarray:
    """Per-frame values (at frame centres) -> per-sample values by linear interpolation, float32."""
    g = np.asarray(g, dtype=np.float32)
    ext = np.concatenate([g[:1], g, g[-1:]])  # hold the end values
    ramp = np.arange(hop, dtype=np.float32) / hop
    # sample s of frame k lies between the centres of frames k - 1/2 and k + 1/2
    lo = np.where(ramp < 0.5, ext[:-2, None], ext[1:-1, None])
    hi = np.where(ramp < 0.5, ext[1:-1, None], ext[2:, None])
    w = np.where(ramp < 0.5, ramp + 0.5, ramp - 0.5)
    return (lo + (hi - lo) * w).reshape(-1)[:n]


_PROGRESSIONS = ((0, 5, 7, 0), (0, 7, 5, 0), (0, 10, 5, 0), (0, 5, 10, 7), (0, 5, 0, 7), (0, 10, 7, 5))
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)


def _strike_step(density_unit: float) -> int:
    """Pad strikes every 4, 2 or 1 sixteenth-note slots as the density cue (in [0, 1]) rises."""
    return 4 if density_unit <= 0.4 else (2 if density_unit <= 0.8 else 1)


def _nearest_octave(pc: int, centre: float, low: float) -> int:
    """The MIDI pitch of class ``pc`` in the octave ``[centre + low, centre + low + 12)``."""
    base = int(np.ceil(centre + low))
    return base + (pc - base) % 12


def render_clip(
    valence: np.ndarray,
    arousal: np.ndarray,
    *,
    sr: int = 44100,
    seed: int | Sequence[int] = 0,
    cue_overrides: Mapping[str, float | np.ndarray] | None = None,
    cue_jitter: float = 1.0,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Render one clip whose emotion follows the given 2 Hz valence-arousal curves.

    Parameters
    ----------
    valence, arousal : np.ndarray [shape=(n,)]
        Labels in [-1, 1] on the 0.5 s grid (value *i* describes ``[0.5 i, 0.5 (i + 1))``); the clip
        lasts ``0.5 n`` seconds.
    sr : int
        Sample rate in Hz (>= 16000).
    seed : int or sequence of int
        Seed for the cue jitter, the score and the timbres.
    cue_overrides : mapping, optional
        Pin cues by name (see :data:`CUES`) to a constant or to a 2 Hz curve ``(n,)`` in [-1, 1]
        while the other cues follow the labels; e.g. ``{"mode": 1.0}`` renders major chords only.
        The other cues are identical to those of the render without overrides.
    cue_jitter : float >= 0
        Scale of every cue's jitter (``jitter_clip`` and ``jitter_time`` of the cue table; 1 = the corpus as
        documented, 0 = every cue equals its label). The random stream is the same for every value.

    Returns
    -------
    audio : np.ndarray [shape=(round(0.5 n sr),)], float32
        Mono audio, peak < 0.99.
    cues : dict[str, np.ndarray [shape=(n,)]]
        Each cue's value in [-1, 1] averaged over each 0.5 s segment, plus ``"valence"`` and
        ``"arousal"`` (the labels as given).
    """
    valence = np.asarray(valence, dtype=np.float64)
    arousal = np.asarray(arousal, dtype=np.float64)
    if valence.ndim != 1 or valence.shape != arousal.shape or len(valence) == 0:
        raise ValueError(
            f"valence and arousal must be non-empty 1-D arrays of equal length, not {valence.shape} "
            f"and {arousal.shape}"
        )
    for name, x in (("valence", valence), ("arousal", arousal)):
        if not np.all(np.isfinite(x)) or np.abs(x).max() > 1.0:
            raise ValueError(f"{name} must be finite and within [-1, 1]")
    if sr < 16000:
        raise ValueError(f"sr must be at least 16000 Hz, not {sr}")
    if not (np.isfinite(cue_jitter) and cue_jitter >= 0):
        raise ValueError(f"cue_jitter must be a finite number >= 0, not {cue_jitter}")

    ss = np.random.SeedSequence(seed if isinstance(seed, int) else list(seed))
    rng_cue, rng_timbre, rng_score, rng_drum = (np.random.default_rng(s) for s in ss.spawn(4))
    n_steps = len(valence)
    duration = n_steps * SEGMENT_S
    n = int(round(duration * sr))
    n_ctrl = int(np.ceil(duration * CONTROL_RATE)) + 1
    tc = np.arange(n_ctrl) / CONTROL_RATE
    cues = _cue_curves(valence, arousal, tc, rng_cue, cue_overrides, cue_jitter)
    u = {k: (v + 1.0) / 2.0 for k, v in cues.items()}

    def at(name: str, t: float, unit: bool = True) -> float:
        i = min(n_ctrl - 1, max(0, int(t * CONTROL_RATE)))
        return float(u[name][i] if unit else cues[name][i])

    synth = _Synth(n, sr, rng_timbre)
    key = int(rng_timbre.integers(12))
    progression = _PROGRESSIONS[int(rng_timbre.integers(len(_PROGRESSIONS)))]
    reg_offset = rng_timbre.uniform(-2.0, 2.0)
    gains = 10 ** (rng_timbre.uniform(-2, 2, 3) / 20)  # pad, lead, bass
    slope_offset = rng_timbre.uniform(-0.2, 0.2)

    # Beat grid: integrate the tempo curve; 16th-note slots at every quarter of a beat.
    bpm = 108.0 * 2.0 ** (0.55 * cues["tempo"])
    beat_phase = np.cumsum(bpm / 60.0) / CONTROL_RATE
    beat_phase += rng_score.uniform(0, 1) - beat_phase[0]
    first = int(np.ceil(beat_phase[0] * 4))
    slots = np.arange(first, int(np.floor(beat_phase[-1] * 4)) + 1)
    slot_t = np.interp(slots / 4.0, beat_phase, tc)
    slot_t += rng_score.normal(0, 0.004, len(slot_t)) * (slots % 4 != 0)
    slot_t = np.clip(slot_t, 0.0, duration)

    pad = np.zeros(n, dtype=np.float32)
    lead = np.zeros(n, dtype=np.float32)
    bass = np.zeros(n, dtype=np.float32)
    drums = np.zeros(n, dtype=np.float32)
    kit = synth.drum_kit(rng_drum)

    def beat_len_at(t0: float) -> float:
        return 60.0 / (108.0 * 2.0 ** (0.55 * at("tempo", t0, unit=False)))

    def articulation(t0: float) -> tuple[float, float, float]:
        art = at("articulation", t0)
        return (
            _lerp(1.1, 0.2, art),
            _lerp(0.06, 0.003, art),
            _lerp(0.25, 0.04, art),
        )  # length, attack, release

    # Chords: a new one every two beats; major or minor drawn from the mode cue at its onset.
    chord_start = np.flatnonzero((slots % 8 == 0) | (np.arange(len(slots)) == 0))
    chord_of_slot = np.searchsorted(chord_start, np.arange(len(slots)), side="right") - 1
    chords = []
    for k, j0 in enumerate(chord_start):
        t0 = float(slot_t[j0])
        root = (key + progression[(int(slots[j0]) // 8) % len(progression)]) % 12
        # graded mode: the share of major chords rises with the cue, all major from c = 0.625 up
        major = rng_score.uniform() < np.clip(0.5 + 0.8 * at("mode", t0, unit=False), 0.0, 1.0)
        chords.append((root, major))
        # Pad: the root-position triad plus the third an octave up, around the register centre (one
        # continuous voice per chord tone), re-struck on every beat, 8th or 16th (density cue) with the
        # articulation's envelope.
        j1 = chord_start[k + 1] if k + 1 < len(chord_start) else len(slots)
        t_end = float(slot_t[j1]) if j1 < len(slots) else duration
        third = 4 if major else 3
        # root position (the same interval shape for every chord of a mode), root within +-6 of the centre
        low = _nearest_octave(root, 69.0 + 6.0 * at("register", t0, unit=False) + reg_offset, -6.0)
        voices = [(low, 0.2), (low + third, 0.3), (low + 7, 0.2), (low + 12 + third, 0.25)]
        dis = 1.0 - at("consonance", t0)
        extra = 0.7 * float(np.clip((dis - 0.3) / 0.7, 0.0, 1.0))
        if extra > 0:  # tritone and minor ninth above the root
            voices += [(low + 6, 0.22 * extra), (low + 13, 0.22 * extra)]
        envs = []
        for j in range(j0, j1):
            tb = float(slot_t[j])
            step = _strike_step(at("density", tb))
            if slots[j] % step != 0 and j != j0:
                continue
            frac, att, rel = articulation(tb)
            n_on = max(1, int(min(frac * beat_len_at(tb) * step / 4, t_end + 0.6 - tb) * sr))
            envs.append((int((tb - t0) * sr), synth.envelope(n_on, att, 0.4, 0.75, rel)))
        env = np.zeros(max(off + len(e) for off, e in envs), dtype=np.float32)
        for off, e in envs:
            np.maximum(env[off : off + len(e)], e, out=env[off : off + len(e)])
        slope = _lerp(2.8, 0.9, at("brightness", t0)) + slope_offset + 0.3
        synth.additive_chord(pad, "pad", int(t0 * sr), voices, env, slope, 30.0 * dis)

    melody_prev = None
    slot_w = np.array([1.0, 0.5, 0.8, 0.5])
    for j, s in enumerate(slots):
        t0 = float(slot_t[j])
        start = int(t0 * sr)
        pos = int(s % 16)
        beat_len = beat_len_at(t0)
        frac, att, rel = articulation(t0)
        dis = 1.0 - at("consonance", t0)
        bright = at("brightness", t0)
        dens = at("density", t0)
        perc = at("percussion", t0)
        slope = _lerp(2.8, 0.9, bright) + slope_offset
        root, major = chords[chord_of_slot[j]]
        # Bass: chord root on every chord change, more often when the density cue is high.
        if j == 0 or s % 8 == 0 or (s % 4 == 0 and dens > 0.35) or (s % 2 == 0 and dens > 0.75):
            ioi = 2 * beat_len if dens <= 0.35 else (beat_len if dens <= 0.75 else beat_len / 2)
            env = synth.envelope(max(1, int(frac * ioi * sr)), max(att, 0.005), 0.3, 0.7, rel)
            voice = [(_nearest_octave(root, 38.0, 0.0), 0.5)]
            synth.additive_chord(bass, "bass", start, voice, env, slope + 0.2, 0.0)
        # Lead: a note on a 16th slot with a probability from the density cue and the metric position.
        p_note = _lerp(0.06, 1.0, dens) * slot_w[pos % 4]
        if rng_score.uniform() < p_note:
            scale = _MAJOR if major else _MINOR
            centre = 81.0 + 7.0 * at("register", t0, unit=False) + reg_offset
            cand = np.arange(int(centre) - 8, int(centre) + 9)
            pcs = (cand - root) % 12
            w_pc = np.select([pcs == 0, pcs == (4 if major else 3), pcs == 7], [3.0, 4.0, 2.0], 0.0)
            w_pc += np.where(np.isin(pcs, scale) & (w_pc == 0), 1.0, 0.0)
            chrom = w_pc == 0
            if chrom.any() and dis > 0:
                w_pc[chrom] = 0.35 * dis * w_pc.sum() / (1.0 - 0.35 * dis) / chrom.sum()
            prev = centre if melody_prev is None else melody_prev
            w = w_pc * np.exp(-np.abs(cand - prev) / 3.0) * np.exp(-np.abs(cand - centre) / 6.0)
            m = int(rng_score.choice(cand, p=w / w.sum()))
            melody_prev = m
            ioi = min(2 * beat_len, beat_len / 4 * (1 + rng_score.integers(0, 4)))
            # crisp onsets whatever the articulation, so that the note density is heard
            env = synth.envelope(max(1, int(frac * ioi * sr)), min(att, 0.012), 0.25, 0.6, rel)
            synth.fm_note(lead, start, float(_midi_hz(m)), env, _lerp(0.3, 3.5, bright), 0.6, 30.0 * dis)
        # Drums
        vel = rng_score.uniform(0.8, 1.0)
        var = int(rng_score.integers(3))
        if pos % 8 == 0 or (pos % 4 == 0 and perc > 0.6):
            synth._add(drums, start, np.float32(vel) * kit["kick"][var])
        if pos % 8 == 4 and perc > 0.25:
            synth._add(drums, start, np.float32(vel) * kit["snare"][var])
        if (pos % 2 == 0 and perc > 0.4) or (perc > 0.75):
            synth._add(drums, start, np.float32(0.5 * vel * (1.2 if pos % 2 == 0 else 0.8)) * kit["hat"][var])

    tonal = gains[0] * pad + gains[1] * lead + gains[2] * bass
    # Drum bus at a cue-given ratio of the tonal bus, then the mix follows the loudness cue.
    hop = max(1, sr // CONTROL_RATE)
    width = CONTROL_RATE  # 1 s smoothing
    frame_t = (np.arange(int(np.ceil(n / hop))) + 0.5) * hop / sr
    p_ton = _smoothed_power(tonal, hop, width)
    p_drm = _smoothed_power(drums, hop, width)
    ratio_db = _lerp(-24.0, 0.0, np.interp(frame_t, tc, u["percussion"]))
    g_drm = np.sqrt((p_ton + 1e-12) / (p_drm + 1e-9)) * 10 ** (ratio_db / 20)
    mix = tonal + _frames_to_samples(g_drm, hop, n) * drums
    target_db = -24.0 + 6.0 * np.interp(frame_t, tc, cues["loudness"])
    p_mix = _smoothed_power(mix, hop, width)
    g = 10 ** (target_db / 20) / np.sqrt(p_mix + 1e-10)
    mix *= _frames_to_samples(np.minimum(g, 1e3), hop, n)
    # soft-knee limiter: samples above 0.8 are squashed with tanh (never reaching 1.0); it touches about
    # 1e-5 of the samples, so the level stays an absolute cue across clips
    over = np.abs(mix) > _KNEE
    if over.any():
        mag = np.abs(mix[over])
        mix[over] = np.sign(mix[over]) * (_KNEE + (0.99 - _KNEE) * np.tanh((mag - _KNEE) / (0.99 - _KNEE)))

    seg = np.minimum((tc // SEGMENT_S).astype(int), n_steps - 1)
    counts = np.bincount(seg, minlength=n_steps)
    out = {name: np.bincount(seg, weights=cues[name], minlength=n_steps) / counts for name in _CUE_NAMES}
    out["valence"] = valence.copy()
    out["arousal"] = arousal.copy()
    return mix.astype(np.float32), dict(sorted(out.items()))


# ----------------------------------------------------------------------------------------------- labels


def quadrant_tags(
    valence: np.ndarray, arousal: np.ndarray, *, min_fraction: float = TAG_MIN_FRACTION
) -> dict[str, int]:
    """Multi-label emotion tags from the time spent in each V-A quadrant.

    A tag is 1 when at least ``min_fraction`` of the values fall in its quadrant
    (:func:`moodscope.emotion.quadrant_index`: zero counts as positive).

    Parameters
    ----------
    valence, arousal : np.ndarray [shape=(n,)]
        A dynamic curve.

    Returns
    -------
    dict[str, int]
        ``{"happy": 0|1, "angry": 0|1, "sad": 0|1, "calm": 0|1}``
    """
    v, a = np.asarray(valence), np.asarray(arousal)
    if v.shape != a.shape or v.size == 0:
        raise ValueError("valence and arousal must be non-empty and of equal shape")
    frac = np.bincount(quadrant_index(v, a).ravel(), minlength=4) / v.size
    return {tag: int(frac[q] >= min_fraction) for q, tag in enumerate(QUADRANT_TAGS)}


# -------------------------------------------------------------------------------------------- data set


def _clip_job(args: tuple) -> tuple[int, dict[str, np.ndarray]]:
    index, seed, n_steps, sr, path, fmt, jitter = args
    import soundfile as sf

    valence, arousal = label_curves(n_steps, seed=[seed, index, 0])
    # Round the labels as they are written so that the audio follows exactly the published curve.
    valence, arousal = np.round(valence, 6), np.round(arousal, 6)
    audio, cues = render_clip(valence, arousal, sr=sr, seed=[seed, index, 1], cue_jitter=jitter)
    sf.write(path, audio, sr, format=_FORMATS[fmt], subtype="PCM_16")
    return index, cues


def _fmt(x: float) -> str:
    s = f"{x:.6f}"
    return "0.000000" if s == "-0.000000" else s


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def _is_corpus_dir(path: Path) -> bool:
    if not path.exists():
        return True
    if not path.is_dir():
        return False
    if not any(path.iterdir()):
        return True
    meta = path / "dataset.yaml"
    return meta.is_file() and "generator: moodscope.datasets.corpus" in meta.read_text(
        encoding="utf-8", errors="replace"
    )


def synthesize(
    out_dir: str | os.PathLike,
    *,
    n_clips: int = 40,
    duration: float = 45.0,
    seed: int = 0,
    sr: int = 44100,
    fmt: str = "wav",
    workers: int | None = None,
    progress: bool = True,
    cue_jitter: float = 1.0,
) -> Path:
    """Render the synthetic corpus into ``out_dir`` in the generic data set layout.

    Writes ``audio/syn0000.wav ...``, ``static.csv`` (track_id,valence,arousal = mean of the dynamic
    curve), ``dynamic.csv`` (track_id,time_s,valence,arousal at 2 Hz, ``time_s`` = start of the 0.5 s
    segment), ``tags.csv`` (track_id,happy,angry,sad,calm; see :func:`quadrant_tags`), ``cues.csv``
    (track_id,time_s,<cue>...: the cue curves of the module docstring) and ``dataset.yaml``. Everything
    is written to a temporary sibling directory that is renamed to ``out_dir`` at the end; an existing
    ``out_dir`` is replaced only when it is empty or a previous synthetic corpus.

    The output is byte-identical for the same arguments, whatever ``workers``: clip *i* is rendered
    from the seed ``(seed, i)``.

    Parameters
    ----------
    out_dir : path
        Directory to create.
    n_clips : int > 0
        Number of clips (track ids ``syn0000``, ``syn0001``, ...).
    duration : float
        Clip length in seconds, a positive multiple of 0.5.
    seed : int >= 0
        Corpus seed.
    sr : int
        Sample rate (>= 16000).
    fmt : {"wav", "flac"}
        Audio format (16-bit PCM).
    workers : int, optional
        Worker processes; default ``min(os.cpu_count(), n_clips)``; 1 renders in this process.
    progress : bool
        Show a progress bar and the elapsed time on stderr.
    cue_jitter : float >= 0
        Scale of the cues' jitter (:func:`render_clip`); 1 is the corpus of the module docstring. The labels
        are the same for every value; only how closely each cue follows them changes.

    Returns
    -------
    Path
        ``out_dir``.
    """
    out_dir = Path(out_dir)
    if n_clips <= 0:
        raise ValueError(f"n_clips must be positive, not {n_clips}")
    n_steps = duration / SEGMENT_S
    if duration <= 0 or abs(n_steps - round(n_steps)) > 1e-9:
        raise ValueError(f"duration must be a positive multiple of {SEGMENT_S} s, not {duration}")
    n_steps = int(round(n_steps))
    if fmt not in _FORMATS:
        raise ValueError(f"fmt must be one of {sorted(_FORMATS)}, not {fmt!r}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, not {seed}")
    if sr < 16000:
        raise ValueError(f"sr must be at least 16000 Hz, not {sr}")
    if not (np.isfinite(cue_jitter) and cue_jitter >= 0):
        raise ValueError(f"cue_jitter must be a finite number >= 0, not {cue_jitter}")
    if not _is_corpus_dir(out_dir):
        raise DatasetError(
            f"{out_dir}: exists and is not a moodscope synthetic corpus; refusing to overwrite it"
        )
    workers = min(os.cpu_count() or 1, n_clips) if workers is None else max(1, min(int(workers), n_clips))

    t_start = time.perf_counter()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "audio").mkdir(parents=True)
    try:
        ids = [f"syn{i:04d}" for i in range(n_clips)]
        jobs = [
            (i, seed, n_steps, sr, str(tmp / "audio" / f"{ids[i]}.{fmt}"), fmt, float(cue_jitter))
            for i in range(n_clips)
        ]
        results: dict[int, dict[str, np.ndarray]] = {}
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_clips, desc="synthesizing", unit="clip", file=sys.stderr)
        if workers == 1:
            for job in jobs:
                i, cues = _clip_job(job)
                results[i] = cues
                if bar is not None:
                    bar.update()
        else:
            # fork needs no ``if __name__ == "__main__"`` guard in the caller's script; the workers use
            # only numpy/scipy/soundfile, so threads held by the parent (e.g. torch's) are not touched.
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                for i, cues in pool.map(_clip_job, jobs):
                    results[i] = cues
                    if bar is not None:
                        bar.update()
        if bar is not None:
            bar.close()
        _write_tables(tmp, ids, [results[i] for i in range(n_clips)])
        _write_meta(tmp, n_clips=n_clips, duration=duration, seed=seed, sr=sr, fmt=fmt, cue_jitter=cue_jitter)
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    elapsed = time.perf_counter() - t_start
    if progress:
        print(
            f"synthesized {n_clips} clips x {duration:g} s ({n_clips * duration / 60:.1f} min of audio) "
            f"in {elapsed:.1f} s with {workers} worker(s) -> {out_dir}",
            file=sys.stderr,
        )
    return out_dir


def _write_tables(root: Path, ids: list[str], results: list[dict[str, np.ndarray]]) -> None:
    static, dynamic, tags, cues = (io.StringIO() for _ in range(4))
    ws, wd, wt, wc = (csv.writer(f, lineterminator="\n") for f in (static, dynamic, tags, cues))
    ws.writerow(["track_id", "valence", "arousal"])
    wd.writerow(["track_id", "time_s", "valence", "arousal"])
    wt.writerow(["track_id", *TAG_NAMES])
    wc.writerow(["track_id", "time_s", *_CUE_NAMES])
    for tid, r in zip(ids, results):
        v, a = np.round(r["valence"], 6), np.round(r["arousal"], 6)
        ws.writerow([tid, _fmt(float(np.mean(v))), _fmt(float(np.mean(a)))])
        for i in range(len(v)):
            t = f"{i * SEGMENT_S:.1f}"
            wd.writerow([tid, t, _fmt(v[i]), _fmt(a[i])])
            wc.writerow([tid, t, *(_fmt(r[c][i]) for c in _CUE_NAMES)])
        tag = quadrant_tags(v, a)
        wt.writerow([tid, *(tag[k] for k in TAG_NAMES)])
    for name, buf in (("static", static), ("dynamic", dynamic), ("tags", tags), ("cues", cues)):
        _write_text(root / f"{name}.csv", buf.getvalue())


def _write_meta(
    root: Path, *, n_clips: int, duration: float, seed: int, sr: int, fmt: str, cue_jitter: float = 1.0
) -> None:
    import yaml

    meta = {
        "name": "synthetic",
        "description": (
            "moodscope's built-in synthetic corpus: music-like clips rendered offline whose valence and "
            "arousal follow musical cues (tempo, note density, loudness, brightness, percussion -> arousal; "
            "mode, consonance, register, articulation -> valence), each label a jittered mix of several "
            "cues. Labels are the ground truth; see cues.csv and the moodscope.datasets.corpus docstring."
        ),
        "scale": {"min": -1, "max": 1},
        "generator": "moodscope.datasets.corpus",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "n_clips": int(n_clips),
        "duration_s": float(duration),
        "sr": int(sr),
        "format": fmt,
        **({"cue_jitter": float(cue_jitter)} if cue_jitter != 1.0 else {}),
        "hop_s": SEGMENT_S,
        "time_s": "start of the 0.5 s segment the value describes",
        "tags": list(TAG_NAMES),
        "tag_rule": (
            f"tag = 1 when >= {TAG_MIN_FRACTION:.0%} of the 2 Hz values lie in its quadrant: happy V>0,A>0; "
            "angry V<=0,A>0; sad V<=0,A<=0; calm V>0,A<=0"
        ),
        "cues": [
            {
                "name": c.name,
                "driven_by": c.label,
                "weight": c.weight,
                "jitter_clip": c.jitter_clip,
                "jitter_time": c.jitter_time,
                "rendering": c.rendering,
            }
            for c in CUES
        ],
    }
    _write_text(root / "dataset.yaml", yaml.safe_dump(meta, sort_keys=False, allow_unicode=False, width=100))
