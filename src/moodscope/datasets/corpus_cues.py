"""The synthetic corpus's emotion model: its constants, the cue table (:data:`CUES`), the valence-arousal label
curves of a clip and the cue curves that follow them (see :mod:`moodscope.datasets.corpus`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..config import SEGMENT_S
from ..emotion import QUADRANT_TAGS

GENERATOR_VERSION = "1.1"  #: bumped whenever the same arguments would render different audio
CONTROL_RATE = 100  #: Hz, rate of the internal cue curves
TAG_NAMES = QUADRANT_TAGS
MOOD_RANGE = 0.5  #: a clip's mood (centre of its curve) is uniform in +-MOOD_RANGE, per label
SWING = 0.7  #: control points lie within +-SWING of the clip's mood (and within +-limit)
MIN_STEP = 0.5  #: successive control points differ by at least this much
TAG_MIN_FRACTION = 0.25  #: fraction of segments in a quadrant needed for its tag


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
CUE_NAMES = tuple(c.name for c in CUES)


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


def cue_curves(
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
            raise ValueError(f"unknown cue {name!r} in cue_overrides; known: {', '.join(CUE_NAMES)}")
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
