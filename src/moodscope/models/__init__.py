"""Model registry. ``build(name, **args)`` makes a model; ``MODELS.names()`` lists them.

Importing this package imports every model module so that each registers itself.
"""

from __future__ import annotations

import importlib

from .base import (
    MODELS,
    InputNorm,
    MoodModel,
    build,
    build_skeleton,
    model_bytes,
    register_model,
    resolve_args,
)

_MODULES = ["damff", "adff", "tagger", "crnn", "bcrsn", "dnn_raw", "mcrnn", "musicnn_va"]
for _m in _MODULES:
    importlib.import_module(f"{__name__}.{_m}")

__all__ = [
    "MODELS",
    "InputNorm",
    "MoodModel",
    "build",
    "build_skeleton",
    "model_bytes",
    "register_model",
    "resolve_args",
]
