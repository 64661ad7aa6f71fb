"""Model files: weights as safetensors, constructor arguments and feature settings as JSON metadata.

A model file is one ``.safetensors`` file whose metadata entry ``"moodscope"`` holds::

    {"format": 1, "model_name": "damff", "model_args": {...}, "features": {...FeatureConfig...},
     "info": {"description": ..., "trained_on": ..., "metrics": ..., ...}}

Loading never unpickles. A file whose tensors do not match the architecture it names fails with a
:class:`~moodscope.errors.ModelFileError` listing the missing, unexpected and differently shaped tensors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .config import FeatureConfig
from .errors import ModelFileError
from .fileio import atomic_path

FORMAT_VERSION = 1
META_KEY = "moodscope"


@dataclass
class ModelBundle:
    """A loaded model file: the module (in eval mode) plus its feature settings and info."""

    model: Any
    features: FeatureConfig
    info: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def name(self) -> str:
        return self.model.model_name


def save_model(path: str | Path, model, features: FeatureConfig, info: dict | None = None) -> Path:
    """Write ``model`` to ``path`` atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT_VERSION,
        "model_name": model.model_name,
        "model_args": model.model_args,
        "features": features.to_dict(),
        "info": info or {},
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta, default=_json_default)})
    return path


def _json_default(o):
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_metadata(path: str | Path) -> dict:
    """The JSON metadata of a model file (no tensors are read)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    return read_json_metadata(path, META_KEY, FORMAT_VERSION, "not a moodscope model")


def read_json_metadata(path: Path, key: str, fmt, missing: str) -> dict:
    """The JSON object stored under ``key`` in a safetensors file's metadata, checked to have ``format``
    ``fmt``; ``missing`` says what a file without it is (for the error). No tensor is read."""
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(key)
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise ModelFileError(f"{path}: not a safetensors model file ({e})") from None
    if raw is None:
        raise ModelFileError(f"{path}: safetensors file has no '{key}' metadata ({missing})")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{path}: model metadata is not valid JSON ({e})") from None
    if meta.get("format") != fmt:
        raise ModelFileError(f"{path}: model file format {meta.get('format')!r}, expected {fmt}")
    return meta


def load_model(path: str | Path, device: str | torch.device = "cpu") -> ModelBundle:
    """Load a model file into a :class:`ModelBundle` (model in eval mode on ``device``)."""
    from .models import MODELS, build

    path = Path(path)
    meta = read_metadata(path)
    name = meta.get("model_name")
    if name not in MODELS:
        raise ModelFileError(f"{path}: unknown model {name!r}; known: {', '.join(MODELS.names())}")
    try:
        model = build(name, **meta.get("model_args", {}))
    except TypeError as e:
        raise ModelFileError(f"{path}: {e}") from None
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    load_weights(path, model, tensors, f"model {name!r} {meta.get('model_args')}")
    model.eval().to(device)
    return ModelBundle(
        model=model,
        features=FeatureConfig.from_dict(meta.get("features")),
        info=meta.get("info", {}),
        path=path,
    )


def load_weights(path, model, tensors: dict, what: str) -> None:
    """Load ``tensors`` into ``model`` strictly; a mismatch raises :class:`ModelFileError` naming the missing,
    unexpected and mis-shaped tensors (``what`` names the architecture in the message)."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    shapes = [
        f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(tensors))
        if tuple(tensors[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing tensors {_short(missing)}")
        if unexpected:
            parts.append(f"unexpected tensors {_short(unexpected)}")
        if shapes:
            parts.append(f"shape mismatch {_short(shapes)}")
        raise ModelFileError(f"{path}: weights do not match {what}: " + "; ".join(parts))
    model.load_state_dict(tensors, strict=True)


def _short(items: list[str], n: int = 4) -> str:
    s = ", ".join(items[:n])
    return s + (f" (+{len(items) - n} more)" if len(items) > n else "")
