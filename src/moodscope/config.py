"""Shared constants and the feature settings contract (see docs: design.md, "Contracts").

Time grid: dynamic values live on a 0.5 s grid. Value *i* of a window starting at *s* seconds
describes the segment ``[s + 0.5 i, s + 0.5 (i + 1))``. With a 10 ms hop, one segment is 50
log-Mel frames and a 30 s window is 3000 frames (60 segments).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

SEGMENT_S = 0.5  #: length of one dynamic step in seconds (2 Hz labels)
WINDOW_S = 30.0  #: DAMFF's training / sliding window length in seconds


@dataclass(frozen=True)
class FeatureConfig:
    """Log-Mel settings shared by every model (the papers' settings are the defaults).

    Parameters follow librosa's names. ``n_fft`` = 2646 samples is the 60 ms window at 44.1 kHz,
    ``hop_length`` = 441 is 10 ms. ``kind="waveform"`` is for raw-audio models: the "features" are
    then the mono waveform at ``sr`` as an array ``(samples, 1)`` (one "frame" per sample), so the 0.5 s
    grid is ``sr / 2`` frames; the mel settings are ignored. Power spectrogram (``power=2``) through a Slaney mel filterbank,
    converted with ``10 * log10(max(amin, S / ref))``. ``top_db`` is ``None`` by default: librosa's
    default of 80 clips relative to each input's own maximum, which would make a segment's features
    depend on what else is in the window; we keep the absolute dB scale instead.
    """

    kind: str = "logmel"
    sr: int = 44100
    n_mels: int = 128
    n_fft: int = 2646
    hop_length: int = 441
    fmin: float = 0.0
    fmax: float | None = None
    power: float = 2.0
    amin: float = 1e-10
    top_db: float | None = None
    center: bool = True

    def __post_init__(self):
        if self.kind not in ("logmel", "waveform"):
            raise ValueError(f"feature kind must be 'logmel' or 'waveform', not {self.kind!r}")

    @property
    def frames_per_second(self) -> float:
        return float(self.sr) if self.kind == "waveform" else self.sr / self.hop_length

    @property
    def n_bins(self) -> int:
        """Width of a feature frame: ``n_mels`` (log-Mel) or 1 (waveform)."""
        return 1 if self.kind == "waveform" else self.n_mels

    @property
    def frames_per_segment(self) -> int:
        """Frames in one 0.5 s segment (50 at the default settings)."""
        return int(round(SEGMENT_S * self.frames_per_second))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> FeatureConfig:
        d = dict(d or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown feature settings: {sorted(unknown)}")
        return cls(**d)

    def key(self) -> str:
        """A stable string identifying these settings (used in cache keys)."""
        return json.dumps(self.to_dict(), sort_keys=True)
