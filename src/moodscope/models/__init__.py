"""Model registry. ``build(name, **args)`` makes a model; ``MODELS.names()`` lists them.

Importing this package imports every model module so that each registers itself.
"""

from __future__ import annotations

import importlib

from .base import MODELS, InputNorm, MoodModel, build, register_model, resolve_args

_MODULES = ["damff", "adff", "tagger", "crnn", "bcrsn", "dnn_raw", "mcrnn"]
for _m in _MODULES:
    try:
        importlib.import_module(f"{__name__}.{_m}")
    except ModuleNotFoundError as e:  # a model module not written yet
        if e.name != f"{__name__}.{_m}":
            raise

__all__ = ["MODELS", "InputNorm", "MoodModel", "build", "register_model", "resolve_args"]
