"""The predictor: a loaded model file that predicts an audio file or a waveform array (one path for both)."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import SEGMENT_S
from ..emotion import quadrant_name
from ..errors import MoodscopeError


def bundled_model_path() -> Path:
    """The demo model shipped in the package (a CPU-sized DAMFF trained on the synthetic corpus)."""
    return Path(__file__).resolve().parents[1] / "assets" / "demo_damff.safetensors"


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
        return "  ".join(parts)

    def to_dict(self) -> dict:
        d = {
            "file": self.file,
            "duration_s": round(float(self.duration_s), 3),
            "model": self.model,
            "static": {k: round(float(v), 4) for k, v in self.static.items()},
            "quadrant": self.quadrant,
        }
        if self.dynamic is not None:
            d["dynamic"] = {
                "hop_s": self.dynamic["hop_s"],
                "times_s": [round(float(t), 2) for t in self.dynamic["times_s"]],
                "valence": [round(float(v), 4) for v in self.dynamic["valence"]],
                "arousal": [round(float(v), 4) for v in self.dynamic["arousal"]],
            }
        if self.tags is not None:
            d["tags"] = {k: round(float(v), 4) for k, v in self.tags.items()}
        d.update(self.extra)
        return d

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
    ):
        from ..precision import autocast_dtype, resolve
        from ..tasks.base import make_task

        #: the precision used: ``bf16`` only where the device runs it natively (:mod:`moodscope.precision`)
        self.precision = resolve(precision, device)
        #: dtype of ``torch.autocast`` around the model (features stay float32/float64), or None
        self.autocast = autocast_dtype(self.precision)
        self.bundle = bundle
        self.model = bundle.model
        self.features = bundle.features
        self.device = device
        self.cache = cache
        opts = dict(bundle.info.get("task") or {})
        kind = opts.pop("kind", self.model.output)
        if kind == "dynamic":
            opts = {k: v for k, v in opts.items() if k in ("window_s", "hop_valence", "hop_arousal")}
            if hop_valence is not None:
                opts["hop_valence"] = hop_valence
            if hop_arousal is not None:
                opts["hop_arousal"] = hop_arousal
        self.task = make_task(kind, self.features, **opts)

    @classmethod
    def from_file(cls, path=None, device: str = "cpu", **kw) -> Predictor:
        from ..modelfile import load_model
        from .sliding import resolve_device

        device = resolve_device(device)
        path = Path(path) if path else bundled_model_path()
        if not path.is_file() and path == bundled_model_path():
            raise MoodscopeError(f"{path}: the bundled demo model is missing from this installation")
        return cls(load_model(path, device=device), device=device, **kw)

    def _autocast(self):
        import torch

        from .sliding import _autocast

        return _autocast(torch.device(self.device), self.autocast)

    @property
    def name(self) -> str:
        desc = self.bundle.info.get("description") or ""
        return f"{self.model.model_name}" + (f" ({desc})" if desc else "")

    def _features(self, source, sr=None) -> tuple[np.ndarray, str, float]:
        from ..audio.cache import file_features
        from ..audio.features import compute_features

        if isinstance(source, (str, os.PathLike)):
            feats = file_features(source, self.features, cache=self.cache, device=self.device)
            label = str(source)
        else:
            from ..audio.decode import resample

            y = np.asarray(source, dtype=np.float32)
            if y.ndim == 2:
                y = y.mean(axis=0 if y.shape[0] <= 8 else 1)
            if sr is None:
                raise ValueError("predict(array) needs sr= (the array's sample rate)")
            if sr != self.features.sr:
                y = resample(y, sr, self.features.sr)
            feats = compute_features(y, self.features, device=self.device)
            label = "<array>"
        duration = feats.shape[0] / self.features.frames_per_second
        return feats, label, duration

    def _stream_dynamic(self, path) -> tuple[np.ndarray, float]:
        """Dynamic curve of a file decoded and embedded chunk by chunk (memory independent of its length)."""
        from ..audio.features import iter_file_features
        from ..errors import AudioError
        from .sliding import predict_from_blocks

        n_frames = 0

        def blocks():
            nonlocal n_frames
            for b in iter_file_features(path, self.features, device=self.device):
                n_frames += b.shape[0]
                yield b

        try:
            curve = predict_from_blocks(
                self.model,
                blocks(),
                window_segments=self.task.window_segments,
                hop_valence=self.task.hop_valence,
                hop_arousal=self.task.hop_arousal,
                device=self.device,
                autocast=self.autocast,
            )
        except AudioError as e:
            if e.path is None:
                raise AudioError(path, e.cause) from None
            raise
        return curve, n_frames / self.features.frames_per_second

    def predict(self, source, *, sr: int | None = None) -> Result:
        """Predict a file path or a waveform array (``sr`` required for arrays)."""
        streamable = (
            isinstance(source, (str, os.PathLike))
            and self.task.kind == "dynamic"
            and hasattr(self.model, "embed_segments")
            and self.features.kind == "logmel"
            and not self.cache
        )
        if streamable:
            out, duration = self._stream_dynamic(source)
            label = str(source)
        else:
            feats, label, duration = self._features(source, sr)
            with self._autocast():
                out = self.task.predict(self.model, feats, device=self.device)
        kind = self.task.kind
        dynamic = tags = None
        if kind == "dynamic":
            n_audio = max(1, int(round(duration / SEGMENT_S)))
            curve = np.asarray(out)[:n_audio]
            times = np.arange(len(curve)) * SEGMENT_S
            dynamic = {
                "hop_s": SEGMENT_S,
                "times_s": times,
                "valence": curve[:, 0],
                "arousal": curve[:, 1],
            }
            v, a = float(curve[:, 0].mean()), float(curve[:, 1].mean())
        elif kind == "static":
            v, a = _static_from_output(np.asarray(out), self.task.head)
        else:
            names = self.task.tag_names or [f"tag{i}" for i in range(len(out))]
            tags = {n: float(p) for n, p in zip(names, out)}
            v = a = float("nan")
        res = Result(
            file=label,
            duration_s=duration,
            model=self.name,
            static={"valence": v, "arousal": a},
            quadrant=quadrant_name(v, a) if not np.isnan(v) else "",
            dynamic=dynamic,
            tags=tags,
        )
        if tags is not None and self.task.thresholds is not None:
            res.extra["tags_predicted"] = [n for n, p, t in zip(names, out, self.task.thresholds) if p >= t]
        return res


def _static_from_output(out: np.ndarray, head: str) -> tuple[float, float]:
    """Static (valence, arousal) from a static model's aggregated output; classes map to quadrant centres."""
    if head == "multitask":
        return float(out[0]), float(out[1])
    if head == "valence":
        return float(out[0]), float("nan")
    if head == "arousal":
        return float("nan"), float(out[0])
    if head == "binary":
        # expected value of the sign per dimension: P(pos) - P(neg) in [-1, 1]
        return float(out[1] - out[0]), float(out[3] - out[2])
    # quadrant probabilities (0 happy, 1 angry, 2 sad, 3 calm) -> expected quadrant-centre position
    centres = np.array([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]])
    p = out / max(out.sum(), 1e-9)
    return tuple(float(x) for x in p @ centres)
