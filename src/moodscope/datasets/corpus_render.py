"""Rendering one clip of the synthetic corpus from its cue curves: the synthesiser (additive pad and bass, FM lead,
noise drums), the scheduling of chords and notes, the level and the limiter; and a clip's quadrant tags (see
:mod:`moodscope.datasets.corpus`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import fft as sp_fft
from scipy import signal

from ..config import SEGMENT_S
from ..emotion import QUADRANT_TAGS, quadrant_index
from .corpus_cues import CONTROL_RATE, CUE_NAMES, TAG_MIN_FRACTION, cue_curves

_KNEE = 0.8  # soft limiter threshold


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
    cues = cue_curves(valence, arousal, tc, rng_cue, cue_overrides, cue_jitter)
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
    out = {name: np.bincount(seg, weights=cues[name], minlength=n_steps) / counts for name in CUE_NAMES}
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
