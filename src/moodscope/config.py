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

    ``kind="musicnn"`` are pretrained embeddings: the frozen MSD-MusiCNN network
    (:mod:`moodscope.models.musicnn`) on a 3 s window centred on every 0.5 s step, one "frame" per step
    (2 per second) of 250 values: the 200-unit embedding (Essentia's MSD-MusiCNN embedding) then the 50 MSD
    tag logits. The mel settings are then those of the network's input (:data:`MUSICNN_EMBEDDING`).
    ``level_db`` (``kind="musicnn"`` only) is a ceiling: a track (file or array, as a whole) whose RMS level is
    above it, in dBFS, is scaled down to it before the network; quieter tracks are left alone. Mastered music
    is 10-25 dB louder than the renderings the default model learnt from; the dynamics inside a track stay.
    ``extras`` appends features of the same steps computed from the audio itself (not cached: they cost
    milliseconds): ``("mode",)`` adds the 19 key-invariant mode features of :func:`moodscope.audio.tonal.mode_features`.

    ``compression`` says how mel power becomes features: ``"db"`` (above, the papers' and librosa's
    ``power_to_db``) or ``"musicnn"``: ``log10(1 + 10000 * S)``, the input of the MusiCNN networks (``amin``
    and ``top_db`` unused). It is computed in float32 like Essentia's ``TensorflowInputMusiCNN``: the
    ``musicnn`` package's extractor casts ``S`` to float16 *before* multiplying, which overflows to ``inf``
    wherever ``S`` > 6.55 (loud low notes), so its outputs on loud music are not a reference worth copying.
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
    compression: str = "db"
    extras: tuple = ()
    level_db: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "extras", tuple(self.extras))
        if self.level_db is not None and self.kind != "musicnn":
            raise ValueError("feature level_db: only kind 'musicnn' takes it")
        if self.extras and (self.kind != "musicnn" or set(self.extras) - {"mode"}):
            raise ValueError(
                f"feature extras {list(self.extras)}: only kind 'musicnn' takes them, and only 'mode'"
            )
        if self.kind not in ("logmel", "waveform", "musicnn"):
            raise ValueError(f"feature kind must be 'logmel', 'waveform' or 'musicnn', not {self.kind!r}")
        if self.kind == "musicnn":
            want = {k: v for k, v in _MUSICNN_INPUT.items() if getattr(self, k) != v}
            if want:
                raise ValueError(
                    f"kind 'musicnn' runs the pretrained network on its own input settings: set {want}"
                )
        if self.compression not in ("db", "musicnn"):
            raise ValueError(f"feature compression must be 'db' or 'musicnn', not {self.compression!r}")

    @property
    def frames_per_second(self) -> float:
        if self.kind == "musicnn":
            return 1.0 / SEGMENT_S
        return float(self.sr) if self.kind == "waveform" else self.sr / self.hop_length

    @property
    def n_bins(self) -> int:
        """Width of a feature frame: ``n_mels`` (log-Mel), 1 (waveform) or 250 (MusiCNN embedding + tag logits)."""
        return {"waveform": 1, "musicnn": MUSICNN_BINS + MODE_BINS * len(self.extras)}.get(
            self.kind, self.n_mels
        )

    @property
    def streams(self) -> bool:
        """Whether a long file's features are computed block by block (log-Mel and waveform; the MusiCNN
        embedding needs 1.5 s of context on each side of a step and is computed on the whole file)."""
        return self.kind in ("logmel", "waveform")

    def input_config(self) -> FeatureConfig:
        """The log-Mel settings a ``kind="musicnn"`` extractor computes first (itself for other kinds)."""
        if self.kind == "musicnn":
            return dataclasses.replace(self, kind="logmel", extras=(), level_db=None)
        return self

    def without_extras(self) -> FeatureConfig:
        """These settings without ``extras`` (what the feature cache stores)."""
        return dataclasses.replace(self, extras=()) if self.extras else self

    @property
    def frames_per_segment(self) -> int:
        """Frames in one 0.5 s segment (50 at the default settings)."""
        return int(round(SEGMENT_S * self.frames_per_second))

    @classmethod
    def for_kind(cls, kind: str, **settings) -> FeatureConfig:
        """Settings of a feature kind: the network's own input for ``musicnn``, the defaults otherwise."""
        return cls(**{**(_MUSICNN_INPUT if kind == "musicnn" else {}), **settings, "kind": kind})

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        # defaults of settings added later are left out, so keys and model files made before them stay the same
        if d["compression"] == "db":
            del d["compression"]
        if d["extras"]:
            d["extras"] = list(d["extras"])
        else:
            del d["extras"]
        if d["level_db"] is None:
            del d["level_db"]
        return d

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


#: What the MusiCNN networks were trained on (Pons & Serra's ``musicnn``: 16 kHz, 96 bands, 512/256).
_MUSICNN_INPUT = {"sr": 16000, "n_mels": 96, "n_fft": 512, "hop_length": 256, "compression": "musicnn"}

#: Width of a ``kind="musicnn"`` frame: the 200-unit embedding and the 50 MSD tag logits.
MUSICNN_BINS = 250

#: Width of the ``"mode"`` extra (:func:`moodscope.audio.tonal.mode_features`).
MODE_BINS = 19

#: The pretrained-embedding features of the default model.
MUSICNN_EMBEDDING = FeatureConfig.for_kind("musicnn")
