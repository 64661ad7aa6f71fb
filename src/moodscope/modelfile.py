"""Model files: weights as safetensors, constructor arguments and feature settings as JSON metadata.

A model file is one ``.safetensors`` file whose metadata entry ``"moodscope"`` holds::

    {"format": 1, "model_name": "damff", "model_args": {...}, "features": {...FeatureConfig...},
     "info": {"description": ..., "task": {"kind": ..., ...task options}, "trained_on": ..., ...}}

Loading never unpickles, and a model file is checked before anything is built from it
(:func:`load_model`), so a damaged or hostile file gets one :class:`~moodscope.errors.ModelFileError` line naming
the file and the key or tensor at fault, never a traceback or a huge allocation:

1. the metadata is a JSON object of the keys above, of a format this version reads;
2. ``model_args`` are checked against the named model's declared ``arg_settings`` (every key known, every value
   of its type and within its bounds), ``features`` against :attr:`FeatureConfig.SETTINGS
   <moodscope.config.FeatureConfig.SETTINGS>`, ``info["task"]`` against its kind's ``option_settings``;
3. the model is built on the ``meta`` device (shapes, no memory): its weights must fit :data:`MAX_MODEL_BYTES
   <moodscope.models.base.MAX_MODEL_BYTES>`, it must read the features' frames, and the task must read its outputs;
4. the file's tensors must be the model's, by name, shape and kind of dtype (read from the header, no data);
5. only then is the model built, and the tensors are read: a tensor holding NaN or inf is refused by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from .config import FeatureConfig, SettingError, shown
from .errors import ModelFileError
from .fileio import atomic_path
from .safetensors_io import (
    check_tensors,
    load_weights,
    open_safetensors,
    read_json_metadata,
    read_tensors,
    shown_key,
)

FORMAT_VERSION = 1
META_KEY = "moodscope"
#: The keys of a model file's metadata object.
META_KEYS = ("format", "model_name", "model_args", "features", "info")
#: Longest ``info["description"]`` (it is printed with every prediction).
MAX_DESCRIPTION = 2000


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


# ----------------------------------------------------------------------------------------------- metadata


def read_metadata(path: str | Path) -> dict:
    """The JSON metadata of a model file (no tensors are read), checked as :func:`load_model` checks it up to
    building the model: structure, format, model name, ``model_args``, ``features`` and ``info["task"]``."""
    path = Path(path)
    meta = read_json_metadata(path, META_KEY, FORMAT_VERSION, "not a moodscope model")
    check_metadata(path, meta)
    return meta


@dataclass
class _Checked:
    """What :func:`check_metadata` found a model file's metadata to describe."""

    name: str
    args: dict
    features: FeatureConfig
    info: dict
    task: Any  # the task a Predictor builds from info["task"] (without overrides); None where there is none


def _setting_error(path: Path, e: SettingError, section: str) -> ModelFileError:
    return ModelFileError(f"{path}: {e.within(section)}")


def check_metadata(path: Path, meta: dict) -> _Checked:
    """Check a model file's metadata object (see the module docstring, steps 1-2); the first problem raises
    :class:`ModelFileError` naming ``path`` and the key. Nothing is built but the (small) task object."""
    from .models import MODELS, resolve_args
    from .tasks import TASKS

    unknown = [k for k in meta if k not in META_KEYS]
    if unknown:
        raise ModelFileError(
            f"{path}: {shown_key(unknown[0])}: unknown metadata key; a model file has {', '.join(META_KEYS)}"
        )
    name = meta.get("model_name")
    if not isinstance(name, str) or name not in MODELS:
        raise ModelFileError(
            f"{path}: model_name={shown(name)}: unknown model; known: {', '.join(MODELS.names())}"
        )
    model_cls = MODELS.get(name)
    args = meta.get("model_args", {})
    if not isinstance(args, dict):
        raise ModelFileError(f"{path}: model_args={shown(args)}: must be an object")
    try:
        args = resolve_args(name, args)
    except SettingError as e:
        raise _setting_error(path, e, "model_args") from None

    feats = meta.get("features", {})
    if not isinstance(feats, dict):
        raise ModelFileError(f"{path}: features={shown(feats)}: must be an object")
    try:
        features = FeatureConfig.from_dict(feats)
    except SettingError as e:
        raise _setting_error(path, e, "features") from None
    except ValueError as e:  # settings that do not go together (FeatureConfig's cross-checks)
        raise ModelFileError(f"{path}: features: {e}") from None

    info = meta.get("info", {})
    if not isinstance(info, dict):
        raise ModelFileError(f"{path}: info={shown(info)}: must be an object")
    desc = info.get("description")
    if desc is not None and not (isinstance(desc, str) and len(desc) <= MAX_DESCRIPTION):
        raise ModelFileError(
            f"{path}: info.description={shown(desc)}: must be a string of at most {MAX_DESCRIPTION} characters"
        )
    opts = info.get("task")
    if opts is None:  # no task recorded (a model saved outside an experiment): the predictor's defaults
        return _Checked(name=name, args=args, features=features, info=info, task=None)
    if not isinstance(opts, dict):
        raise ModelFileError(f"{path}: info.task={shown(opts)}: must be an object")
    opts = dict(opts)
    kind = opts.pop("kind", model_cls.output)
    if not isinstance(kind, str) or kind not in TASKS:
        raise ModelFileError(
            f"{path}: info.task.kind={shown(kind)}: unknown task kind; known: {', '.join(TASKS)}"
        )
    if kind != model_cls.output:
        raise ModelFileError(
            f"{path}: info.task.kind={shown(kind)}: model {name!r} gives {model_cls.output!r} outputs"
        )
    task_cls = TASKS.get(kind)
    try:
        task_cls.check_options(opts)
        task = task_cls.for_prediction(features, opts)
    except SettingError as e:
        raise _setting_error(path, e, "info.task") from None
    except ValueError as e:  # options that do not go together (the task's own checks)
        raise ModelFileError(f"{path}: info.task: {e}") from None
    return _Checked(name=name, args=args, features=features, info=info, task=task)


# ------------------------------------------------------------------------------------------------ weights


def load_model(path: str | Path, device: str | torch.device = "cpu") -> ModelBundle:
    """Load a model file into a :class:`ModelBundle` (model in eval mode on ``device``), after the checks of
    the module docstring; any problem raises :class:`ModelFileError` naming the file and the cause."""
    from .models import build

    path = Path(path)
    c, skeleton = check_architecture(
        path, read_json_metadata(path, META_KEY, FORMAT_VERSION, "not a moodscope model")
    )
    with open_safetensors(path) as f:
        check_tensors(path, f, skeleton.state_dict(), f"model {c.name!r} {c.args}")
        model = build(c.name, **c.args)
        tensors = read_tensors(path, f)
    model.load_state_dict(tensors, strict=True)
    model.eval().to(device)
    return ModelBundle(model=model, features=c.features, info=c.info, path=path)


def check_architecture(path: Path, meta: dict):
    """Steps 1-3 of the module docstring: :func:`check_metadata`, then the model built on the ``meta`` device
    (no memory) and checked for its size, its features and its task. Returns ``(checked, skeleton)``; the first
    problem raises :class:`ModelFileError` naming ``path``."""
    from .models import build_skeleton, model_bytes
    from .models.base import MAX_MODEL_BYTES

    c = check_metadata(path, meta)
    what = f"model {c.name!r}"
    try:
        skeleton = build_skeleton(c.name, **c.args)
    except ValueError as e:  # arguments that do not go together (the model's own checks)
        raise ModelFileError(f"{path}: model_args: {e}") from None
    size = model_bytes(skeleton)
    if size > MAX_MODEL_BYTES:
        raise ModelFileError(
            f"{path}: model_args: {what} of these arguments has {size / 2**30:.3g} GiB of weights, "
            f"more than the {MAX_MODEL_BYTES / 2**30:g} GiB a model file may have"
        )
    try:
        skeleton.check_features(c.features)
    except ValueError as e:
        raise ModelFileError(f"{path}: features do not fit {what}: {e}") from None
    try:
        if c.task is not None:
            c.task.check_model(skeleton)
    except SettingError as e:
        raise _setting_error(path, e, "info.task") from None
    except ValueError as e:
        raise ModelFileError(f"{path}: info.task does not fit {what}: {e}") from None
    return c, skeleton


__all__ = [
    "FORMAT_VERSION",
    "META_KEY",
    "ModelBundle",
    "check_architecture",
    "check_metadata",
    "check_tensors",
    "load_model",
    "load_weights",
    "read_json_metadata",
    "read_metadata",
    "read_tensors",
    "save_model",
]
