"""Shared constants and the feature settings contract (see docs: design.md, "Contracts").

Time grid: dynamic values live on a 0.5 s grid. Value *i* of a window starting at *s* seconds
describes the segment ``[s + 0.5 i, s + 0.5 (i + 1))``. With a 10 ms hop, one segment is 50
log-Mel frames and a 30 s window is 3000 frames (60 segments).
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers as _numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

SEGMENT_S = 0.5  #: length of one dynamic step in seconds (2 Hz labels)
WINDOW_S = 30.0  #: DAMFF's training / sliding window length in seconds


# ------------------------------------------------------------------------------------------------------------
# Declared settings: what a setting may be, checked before anything is built from it
#
# Each owner of settings declares them next to its arguments (``FeatureConfig.SETTINGS`` below, a model's
# ``arg_settings``, a task's ``option_settings``), with the factories here; :func:`check_settings` checks a
# mapping against such a declaration. Bounds are sanity bounds (what no real configuration comes near, and what
# keeps a model file from asking for terabytes), not tuning advice.


class SettingError(ValueError):
    """A setting that is not what its owner declares; the message is one line, ``key=value: why``.

    ``key`` is the setting's (dotted) name, ``value`` the value found, ``why`` what it should be.
    """

    def __init__(self, key: str, value: Any, why: str):
        self.key, self.value, self.why = key, value, why
        super().__init__(f"{key}={shown(value)}: {why}")

    def within(self, section: str) -> SettingError:
        """The same error with ``section.`` in front of the key."""
        return SettingError(f"{section}.{self.key}" if section else self.key, self.value, self.why)


def shown(value: Any, limit: int = 40) -> str:
    """A short rendering of a setting's value for a message: JSON for scalars (cut at ``limit`` characters),
    the type and size for lists and objects (their contents are not echoed)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, _numbers.Integral):
        value = int(value)
        if value.bit_length() > 96:
            return f"<an integer of {int(value.bit_length() * math.log10(2)) + 1} digits>"
        return str(value)
    if isinstance(value, _numbers.Real):
        return json.dumps(float(value))
    if isinstance(value, str):
        s = json.dumps(value if len(value) <= limit else value[:limit])
        return s if len(value) <= limit else s[:-1] + '…"'
    if isinstance(value, Mapping):
        return f"<an object of {len(value)} key(s)>"
    if isinstance(value, (list, tuple)):
        return f"<a list of {len(value)} item(s)>"
    return f"<{type(value).__name__}>"


@dataclass(frozen=True)
class Setting:
    """What one setting may be: ``why(value)`` is None for a good value, else what it should be.

    Made by the factories :func:`integer`, :func:`number`, :func:`flag`, :func:`choice`, :func:`text`,
    :func:`integer_list`, :func:`number_list`, :func:`text_list`, :func:`int_or_pair` and :func:`mapping`.
    """

    why: Callable[[Any], str | None]
    doc: str

    def __call__(self, value: Any) -> str | None:
        return self.why(value)


def _optional(check: Callable[[Any], str | None], doc: str, none: bool) -> Setting:
    if not none:
        return Setting(check, doc)
    return Setting(lambda v: None if v is None else check(v), f"{doc} or null")


def _is_int(v: Any) -> bool:
    return isinstance(v, _numbers.Integral) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, _numbers.Real) and not isinstance(v, bool)


def _interval(lo, hi, lo_open: bool = False, hi_open: bool = False) -> str:
    return f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


def _in(v, lo, hi, lo_open: bool = False, hi_open: bool = False) -> bool:
    return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)


def integer(lo: int, hi: int, *, none: bool = False) -> Setting:
    """An integer in ``[lo, hi]`` (not a bool, not a float)."""
    doc = f"an integer in {_interval(lo, hi)}"

    def check(v):
        return None if _is_int(v) and lo <= v <= hi else f"must be {doc}"

    return _optional(check, doc, none)


def number(
    lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False, none: bool = False
) -> Setting:
    """A finite number (integer or float, not a bool) in the interval from ``lo`` to ``hi``."""
    doc = f"a number in {_interval(lo, hi, lo_open, hi_open)}"

    def check(v):
        ok = _is_number(v) and (_is_int(v) or math.isfinite(v)) and _in(v, lo, hi, lo_open, hi_open)
        return None if ok else f"must be {doc}"

    return _optional(check, doc, none)


def flag() -> Setting:
    """``true`` or ``false``."""
    return Setting(lambda v: None if isinstance(v, bool) else "must be true or false", "true or false")


def choice(options: Sequence[str], *, none: bool = False) -> Setting:
    """One of ``options`` (strings)."""
    options = tuple(options)
    shown_opts = ", ".join(json.dumps(o) for o in options[:12]) + (" ..." if len(options) > 12 else "")
    doc = f"one of {shown_opts}"

    def check(v):
        return None if isinstance(v, str) and v in options else f"must be {doc}"

    return _optional(check, doc, none)


def text(max_chars: int = 1000, *, none: bool = False) -> Setting:
    """A string of at most ``max_chars`` characters."""
    doc = f"a string of at most {max_chars} characters"
    return _optional(
        lambda v: None if isinstance(v, str) and len(v) <= max_chars else f"must be {doc}", doc, none
    )


def _sequence(item: Setting, item_doc: str, min_len: int, max_len: int, none: bool, unique: bool) -> Setting:
    doc = f"a list of {min_len} to {max_len} {item_doc}" + (", each once" if unique else "")

    def check(v):
        if not isinstance(v, (list, tuple)) or not min_len <= len(v) <= max_len:
            return f"must be {doc}"
        for i, x in enumerate(v):
            if item(x) is not None:
                return f"item {i} is {shown(x)}; must be {doc}"
        if unique and len(set(v)) != len(v):
            return f"must be {doc}"
        return None

    return _optional(check, doc, none)


def integer_list(lo: int, hi: int, *, min_len: int = 1, max_len: int = 16, none: bool = False) -> Setting:
    """A list of ``min_len`` to ``max_len`` integers in ``[lo, hi]``."""
    return _sequence(integer(lo, hi), f"integers in {_interval(lo, hi)}", min_len, max_len, none, False)


def number_list(lo: float, hi: float, *, min_len: int = 0, max_len: int = 16, none: bool = False) -> Setting:
    """A list of ``min_len`` to ``max_len`` numbers in ``[lo, hi]``."""
    return _sequence(number(lo, hi), f"numbers in {_interval(lo, hi)}", min_len, max_len, none, False)


def text_list(
    *, choices: Sequence[str] | None = None, max_len: int = 16, max_chars: int = 200, unique: bool = False
) -> Setting:
    """A list of at most ``max_len`` strings (each at most ``max_chars`` long, or one of ``choices``)."""
    item = choice(choices) if choices is not None else text(max_chars)
    item_doc = "strings" if choices is None else f"names among {choice(choices).doc[len('one of ') :]}"
    return _sequence(item, item_doc, 0, max_len, False, unique)


def int_or_pair(lo: int, hi: int) -> Setting:
    """An integer in ``[lo, hi]`` or a pair of them (``(time, freq)`` sizes)."""
    one, pair = integer(lo, hi), integer_list(lo, hi, min_len=2, max_len=2)
    doc = f"an integer in {_interval(lo, hi)} or a pair of them"
    return Setting(lambda v: None if one(v) is None or pair(v) is None else f"must be {doc}", doc)


def mapping(settings: Mapping[str, Setting], *, none: bool = False) -> Setting:
    """An object whose keys are among ``settings`` and whose values are what they declare."""
    doc = f"an object with keys among {', '.join(settings)}"

    def check(v):
        if not isinstance(v, Mapping):
            return f"must be {doc}"
        try:
            check_settings(v, settings)
        except SettingError as e:
            return f"{e}"
        return None

    return _optional(check, doc, none)


def check_settings(values: Mapping, settings: Mapping[str, Setting], *, what: str = "setting") -> None:
    """Check every key of ``values`` against ``settings``: an unknown key or a value that is not what its
    :class:`Setting` declares raises :class:`SettingError` naming the key (the first bad one)."""
    if not isinstance(values, Mapping):
        raise SettingError(what, values, "must be an object")
    unknown = [k for k in values if k not in settings]
    if unknown:
        k = unknown[0]
        key = k if isinstance(k, str) else shown(k)
        raise SettingError(key, values[k], f"unknown {what}; known: {', '.join(settings)}")
    for k, v in values.items():
        why = settings[k](v)
        if why is not None:
            raise SettingError(k, v, why)


#: Sample rates a model or its features may declare.
SAMPLE_RATE = integer(1000, 192000)


#: What computes a ``kind="musicnn"`` embedding's front and mid end (:attr:`FeatureConfig.frontend`).
FRONTENDS = ("full", "student")
#: What ``moodscope predict`` and ``serve`` use unless told (``--frontend``); training and evaluation always
#: compute a model's own features.
DEFAULT_FRONTEND = "full"


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

    ``frontend`` (``kind="musicnn"`` only): ``"full"``, the MusiCNN network itself, or ``"student"``, its
    distilled front and mid end (:mod:`moodscope.models.musicnn_student`: 1.9x fewer multiply-adds,
    the same back end; other numbers, close to the full network's). Left out of :meth:`to_dict` when
    ``"full"``, so the keys and model files made before it stay the same.

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
    loudness_lufs: float | None = None
    frontend: str = "full"

    #: What each setting may be (checked on construction, so a model file's or a config's settings are
    #: bounded before any feature is computed); see also the cross-checks in ``__post_init__``.
    SETTINGS: ClassVar[dict[str, Setting]] = {
        "kind": choice(("logmel", "waveform", "musicnn")),
        "sr": SAMPLE_RATE,
        "n_mels": integer(1, 1024),
        "n_fft": integer(16, 65536),
        "hop_length": integer(1, 65536),
        "fmin": number(0, 96000),
        "fmax": number(0, 96000, lo_open=True, none=True),
        "power": number(0, 4, lo_open=True),
        "amin": number(0, 1, lo_open=True),
        "top_db": number(0, 1000, lo_open=True, none=True),
        "center": flag(),
        "compression": choice(("db", "musicnn")),
        "extras": text_list(choices=("mode",), max_len=1, unique=True),
        "level_db": number(-120, 0, none=True),
        "loudness_lufs": number(-70, 0, none=True),
        "frontend": choice(FRONTENDS),
    }
    #: Log-Mel frames per second a setting may give (``sr / hop_length``): at least one frame per 0.5 s step,
    #: at most one per millisecond.
    FRAMES_PER_SECOND: ClassVar[tuple[float, float]] = (2.0, 1000.0)

    def __post_init__(self):
        check_settings({f.name: getattr(self, f.name) for f in dataclasses.fields(self)}, self.SETTINGS)
        object.__setattr__(self, "extras", tuple(self.extras))
        if self.kind != "waveform":  # the log-Mel settings are used (by kind musicnn as its network's input)
            lo, hi = self.FRAMES_PER_SECOND
            if not lo <= self.sr / self.hop_length <= hi:
                raise SettingError(
                    "hop_length",
                    self.hop_length,
                    f"gives {self.sr / self.hop_length:.3g} frames/s at sr {self.sr}; must give {lo:g} to {hi:g}",
                )
            nyquist = self.sr / 2
            if self.fmax is not None and self.fmax > nyquist:
                raise SettingError("fmax", self.fmax, f"must be at most sr / 2 = {nyquist:g}")
            if not self.fmin < (nyquist if self.fmax is None else self.fmax):
                raise SettingError("fmin", self.fmin, "must be below fmax (sr / 2 when fmax is null)")
        if self.level_db is not None and self.kind != "musicnn":
            raise ValueError("feature level_db: only kind 'musicnn' takes it")
        if self.loudness_lufs is not None and self.kind != "musicnn":
            raise ValueError("feature loudness_lufs: only kind 'musicnn' takes it")
        if self.frontend != "full" and self.kind != "musicnn":
            raise ValueError(f"feature frontend {self.frontend!r}: only kind 'musicnn' has another front end")
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
            return dataclasses.replace(
                self, kind="logmel", extras=(), level_db=None, loudness_lufs=None, frontend="full"
            )
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
        for later in ("level_db", "loudness_lufs"):
            if d[later] is None:
                del d[later]
        if d["frontend"] == "full":
            del d["frontend"]
        return d

    @classmethod
    def from_dict(cls, d: dict | None) -> FeatureConfig:
        d = {} if d is None else d
        check_settings(d, cls.SETTINGS, what="feature setting")
        return cls(**d)

    def key(self) -> str:
        """A stable string identifying these settings (used in cache keys)."""
        return json.dumps(self.to_dict(), sort_keys=True)


#: What the MusiCNN networks were trained on (Pons & Serra's ``musicnn``: 16 kHz, 96 bands, 512/256).
_MUSICNN_INPUT = {"sr": 16000, "n_mels": 96, "n_fft": 512, "hop_length": 256, "compression": "musicnn"}

#: Width of a ``kind="musicnn"`` frame: the 200-unit embedding and the 50 MSD tag logits.
MUSICNN_BINS = 250

#: Of which the embedding (the first columns).
MUSICNN_UNITS = 200

#: Width of the ``"mode"`` extra (:func:`moodscope.audio.tonal.mode_features`).
MODE_BINS = 19

#: The pretrained-embedding features of the default model.
MUSICNN_EMBEDDING = FeatureConfig.for_kind("musicnn")
