"""The predictor: a loaded model file that predicts an audio file or a waveform array (one path for both)."""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio import content
from ..audio.cache import cached_features
from ..audio.source import Source
from ..config import FRONTENDS
from ..emotion import quadrant_name
from ..errors import AudioError, MoodscopeError, PredictionError, UnknownNameError, UsageError, text_path
from ..modelfile import load_model
from ..precision import autocast_dtype, resolve, resolve_device
from ..tasks import TASKS

#: The model files shipped in the package, by name: ``default`` (heads on MSD-MusiCNN embeddings trained on
#: EMOPIA's human quadrant labels and the synthetic corpus's curves) and ``demo`` (the CPU-sized DAMFF of
#: ``moodscope demo``, trained on the synthetic corpus only).
BUNDLED_MODELS = {"default": "default_musicnn_va.safetensors", "demo": "demo_damff.safetensors"}


def bundled_model_path(name: str = "default") -> Path:
    """The file of a bundled model (:data:`BUNDLED_MODELS`)."""
    if name not in BUNDLED_MODELS:
        raise UnknownNameError(f"no bundled model {name!r}; bundled: {', '.join(BUNDLED_MODELS)}")
    return Path(__file__).resolve().parents[1] / "assets" / BUNDLED_MODELS[name]


def model_path(model=None) -> Path:
    """A model file from what a user gives: None (the default model), a bundled name, or a path."""
    if model is None or str(model) in BUNDLED_MODELS:
        path = bundled_model_path(str(model or "default"))
        if not path.is_file():
            raise MoodscopeError(
                f"{path}: the bundled {model or 'default'} model is missing from this installation"
            )
        return path
    return Path(model)


@dataclass
class Result:
    """What ``predict`` returns for one track."""

    file: str
    duration_s: float
    model: str
    static: dict
    quadrant: str
    dynamic: dict | None = None
    tags: dict | None = None
    extra: dict = field(default_factory=dict)

    def summary_line(self, width: int = 32) -> str:
        """One human-readable line: file, duration, static V and A, quadrant, and the predicted tags."""
        name = Path(self.file).name
        name = name if len(name) <= width else "…" + name[-(width - 1) :]
        m, sec = divmod(int(round(self.duration_s)), 60)
        parts = [f"{name:<{width}s}", f"{m:2d}:{sec:02d}"]
        v, a = self.static.get("valence", float("nan")), self.static.get("arousal", float("nan"))
        if not (np.isnan(v) and np.isnan(a)):
            parts.append(f"V {v:+.2f}  A {a:+.2f}  {self.quadrant}")
        if self.tags:
            chosen = self.extra.get("tags_predicted")
            if chosen is None:  # no thresholds in the model file: the three most probable
                chosen = sorted(self.tags, key=self.tags.get, reverse=True)[:3]
            parts.append("tags: " + (", ".join(chosen) or "none"))
        moods = self.extra.get("moods")
        if moods:  # human-labelled mood tags (the default model: AllMusic's moods): the three most probable
            parts.append("moods: " + ", ".join(sorted(moods, key=moods.get, reverse=True)[:3]))
        return "  ".join(parts)

    def to_dict(self) -> dict:
        """The JSON schema of one track; values a model does not give (e.g. arousal of a valence-only
        model) are ``None``, so the JSON never holds a bare ``NaN``."""
        d = {
            "file": self.file,
            "duration_s": round(float(self.duration_s), 3),
            "model": self.model,
            "static": {k: _number(v) for k, v in self.static.items()},
            "quadrant": self.quadrant,
        }
        if self.dynamic is not None:
            d["dynamic"] = {
                "hop_s": self.dynamic["hop_s"],
                "times_s": [round(float(t), 2) for t in self.dynamic["times_s"]],
                "valence": [_number(v) for v in self.dynamic["valence"]],
                "arousal": [_number(v) for v in self.dynamic["arousal"]],
            }
        if self.tags is not None:
            d["tags"] = {k: _number(v) for k, v in self.tags.items()}
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Result:
        """The inverse of :meth:`to_dict` (values as rounded there, or exact where the dict is): a result read back
        from JSON, the store or a Ray worker. ``None`` becomes NaN; curve times are float64, values float32 (as the
        tasks give them); keys beyond the schema are ``extra``."""
        d = dict(d)
        dyn = d.pop("dynamic", None)
        tags = d.pop("tags", None)
        nan = float("nan")
        return cls(
            file=d.pop("file"),
            duration_s=float(d.pop("duration_s")),
            model=d.pop("model"),
            static={k: (nan if v is None else float(v)) for k, v in (d.pop("static") or {}).items()},
            quadrant=d.pop("quadrant", ""),
            dynamic=None
            if dyn is None
            else {
                "hop_s": float(dyn["hop_s"]),
                "times_s": np.asarray(dyn["times_s"], dtype=np.float64),
                "valence": np.asarray([nan if v is None else v for v in dyn["valence"]], dtype=np.float32),
                "arousal": np.asarray([nan if v is None else v for v in dyn["arousal"]], dtype=np.float32),
            },
            tags=None if tags is None else {k: (nan if v is None else float(v)) for k, v in tags.items()},
            extra=d,
        )

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        if self.dynamic is not None:
            w.writerow(["time_s", "valence", "arousal"])
            for t, v, a in zip(self.dynamic["times_s"], self.dynamic["valence"], self.dynamic["arousal"]):
                w.writerow([f"{t:.2f}", f"{v:.4f}", f"{a:.4f}"])
        else:
            tag_names = list(self.tags or {})
            w.writerow(["file", "valence", "arousal", "quadrant", *tag_names])
            w.writerow(
                [
                    self.file,
                    f"{self.static['valence']:.4f}",
                    f"{self.static['arousal']:.4f}",
                    self.quadrant,
                    *[f"{self.tags[t]:.4f}" for t in tag_names],
                ]
            )
        return buf.getvalue()


def _number(v, digits: int = 4):
    v = float(v)
    return round(v, digits) if np.isfinite(v) else None


def _all_finite(out) -> bool:
    """True when every number of a task's raw output (array, tensor, or dict/list/tuple of them) is finite."""
    if isinstance(out, dict):
        return all(_all_finite(v) for v in out.values())
    if isinstance(out, (list, tuple)):
        return all(_all_finite(v) for v in out)
    if hasattr(out, "detach"):
        out = out.detach().float().cpu().numpy()
    try:
        arr = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError):
        return True  # not numbers (names, flags)
    return bool(np.isfinite(arr).all())


class Predictor:
    """A loaded model file with everything needed to predict audio files or arrays."""

    def __init__(
        self,
        bundle,
        device: str = "cpu",
        *,
        hop_valence=None,
        hop_arousal=None,
        cache=False,
        precision: str = "float32",
        frontend: str | None = None,
    ):
        #: the precision used: ``bf16`` only where the device runs it natively (:mod:`moodscope.precision`)
        self.precision = resolve(precision, device)
        #: dtype of ``torch.autocast`` around the model (features stay float32/float64), or None
        self.autocast = autocast_dtype(self.precision)
        self.bundle = bundle
        self.model = bundle.model
        self.features = bundle.features
        if frontend is not None:
            if frontend not in FRONTENDS:
                raise UsageError(f"frontend {frontend!r}: must be one of {', '.join(FRONTENDS)}")
            if self.features.kind == "musicnn":  # other models compute their own features: nothing to choose
                self.features = dataclasses.replace(self.features, frontend=frontend)
        self.device = device
        self.cache = cache
        opts = dict(bundle.info.get("task") or {})
        kind = opts.pop("kind", self.model.output)
        self.task = TASKS.get(kind).for_prediction(
            self.features, opts, hop_valence=hop_valence, hop_arousal=hop_arousal
        )

    @classmethod
    def from_file(cls, path=None, device: str = "cpu", **kw) -> Predictor:
        device = resolve_device(device)
        return cls(load_model(model_path(path), device=device), device=device, **kw)

    @property
    def name(self) -> str:
        desc = self.bundle.info.get("description") or ""
        front = " [student front end]" if self.features.frontend != "full" else ""
        return f"{self.model.model_name}" + (f" ({desc})" if desc else "") + front

    @property
    def frontend_id(self) -> str:
        """``""`` for the model's own features, else ``"+student-<hash of the student's weights>"``: results
        of another front end are other numbers (the results store keeps them apart)."""
        if self.features.frontend == "full":
            return ""
        from ..models.musicnn_student import bundled_id

        return f"+{self.features.frontend}-{bundled_id()}"

    def _blocks(self, source, sr=None):
        """``(blocks, label, frames, seconds)``: the features of a file or an array, as an iterator of
        consecutive blocks, a callable giving the number of frames read (known once the blocks are consumed),
        and one giving the audio's own length: samples / rate of an array, the header's sample count of a file
        (an MP3's estimated from its frames and size). The features' span rounds (a 0.3 s clip fills one 0.5 s
        step, a log-Mel centred on its ends has one frame more), so it is not the duration.

        One road for both (:func:`~moodscope.audio.cache.cached_features`): the source is read whole or in
        blocks (a long file, or a task that consumes blocks, :attr:`~moodscope.tasks.base.Task.streams`, on
        features that stream), the feature cache wrapping it when it is on.
        """
        if isinstance(source, (str, os.PathLike)):
            label = text_path(source)  # a name that is not UTF-8 is written with \xNN escapes everywhere
            audio = Source.file(source, self.features.sr)
        elif sr is None:
            raise ValueError("predict(array) needs sr= (the array's sample rate)")
        else:
            label, audio = "<array>", Source.array(source, int(sr), self.features.sr)
        parts = cached_features(
            audio, self.features, cache=self.cache, device=self.device, stream=self.task.streams
        )
        n_frames = 0

        def blocks():
            nonlocal n_frames
            for block in parts:
                n_frames += block.shape[0]
                yield block

        return blocks(), label, lambda: n_frames, audio.seconds

    def predict(self, source, *, sr: int | None = None) -> Result:
        """Predict a file path or a waveform array (``sr`` required for arrays): one path for both."""

        with content.collect() as notes:  # what the samples say beyond the music: the result's warnings
            blocks, label, frames, seconds = self._blocks(source, sr)
            try:
                out = self.task.predict_blocks(self.model, blocks, device=self.device, autocast=self.autocast)
            except AudioError as e:
                if e.path is None and label != "<array>":
                    raise AudioError(label, e.cause) from None
                raise
        if not _all_finite(out):
            raise PredictionError(
                label, "the model's output is not finite (NaN or inf): the model file may be damaged"
            )
        fields = self.task.result_fields(out, frames() / self.features.frames_per_second)
        v, a = fields["static"]["valence"], fields["static"]["arousal"]
        return Result(
            file=label,
            duration_s=seconds(),
            model=self.name,
            static=fields["static"],
            quadrant=quadrant_name(v, a) if not (np.isnan(v) or np.isnan(a)) else "",
            dynamic=fields.get("dynamic"),
            tags=fields.get("tags"),
            extra=dict(fields.get("extra") or {}, **({"warnings": notes} if notes else {})),
        )
