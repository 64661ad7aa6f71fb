"""The record that dataset adapters produce and everything downstream consumes.

Adapters only turn a release's files into :class:`Track` records with labels on the canonical
scale (valence and arousal in [-1, 1]); they hold no training logic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Dynamic:
    """A 2 Hz valence-arousal curve. ``times_s[i]`` is the start of the 0.5 s segment value *i* describes."""

    times_s: np.ndarray  # (n,) float, seconds, step 0.5
    valence: np.ndarray  # (n,) in [-1, 1]
    arousal: np.ndarray  # (n,) in [-1, 1]

    def __post_init__(self):
        self.times_s = np.asarray(self.times_s, dtype=np.float64)
        self.valence = np.asarray(self.valence, dtype=np.float32)
        self.arousal = np.asarray(self.arousal, dtype=np.float32)
        if not (len(self.times_s) == len(self.valence) == len(self.arousal)):
            raise ValueError("dynamic times/valence/arousal lengths differ")


@dataclass
class Segment:
    """A labelled time span of a track (CAL500exp-style segment labels)."""

    start_s: float
    end_s: float
    tags: dict[str, float] = field(default_factory=dict)


@dataclass
class Track:
    """One labelled (or unlabelled) piece of audio.

    Attributes
    ----------
    id : str
        The dataset's identifier (string even when numeric in the release).
    audio : Path | None
        Path of the audio file; ``None`` when the release lists labels without audio.
    valence, arousal : float | None
        Static labels on the canonical [-1, 1] scale.
    dynamic : Dynamic | None
        2 Hz curve on the canonical scale.
    tags : dict[str, float]
        Track-level tags (0/1 or fractions in [0, 1]).
    segments : list[Segment]
        Time-stamped segment tags (CAL500exp).
    split : str | None
        A split name given by the release (e.g. ``"development"``), if any.
    meta : dict
        Anything else the adapter read (title, artist, native-scale values...).
    """

    id: str
    audio: Path | None = None
    valence: float | None = None
    arousal: float | None = None
    dynamic: Dynamic | None = None
    tags: dict[str, float] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)
    split: str | None = None
    meta: dict = field(default_factory=dict)

    @property
    def has_static(self) -> bool:
        return self.valence is not None and self.arousal is not None
