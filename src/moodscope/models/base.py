"""Base class and registry of moodscope models.

Every model is an ``nn.Module`` registered by name; :func:`build` turns ``(name, args)`` into a module
and records the fully resolved constructor arguments on it (``model.model_args``), which is what a
model file stores beside the weights. Models take log-Mel features, never files.

Input convention (all models): ``x`` of shape ``(batch, 1, frames, n_mels)`` holding log-power in dB
(see :class:`moodscope.config.FeatureConfig`). Each model starts with :class:`InputNorm`, whose per-band
mean/std buffers are set from the training data by the trainer (``set_stats``) and saved in the model file,
so a saved model needs nothing else to predict.

Output kinds (class attribute ``output``):

- ``"dynamic"``: ``forward`` returns ``(batch, n_segments, 2)`` valence/arousal, one per 0.5 s segment.
  Dynamic models whose convolutions see one segment at a time also implement
  ``embed_segments(seg) -> (n, d)`` for ``seg`` of shape ``(n, 1, frames_per_segment, n_mels)`` and
  ``sequence_head(emb) -> (batch, n_segments, 2)`` for ``emb`` of shape ``(batch, n_segments, d)``;
  ``forward`` must equal ``sequence_head(embed_segments(...))``. Inference uses this to embed every
  segment of a song once (:mod:`moodscope.inference`).
- ``"static"``: ``forward`` returns ``(batch, n_out)``: regression outputs (valence, arousal order for
  multi-task) or class logits (``task`` argument says which).
- ``"tags"``: ``forward`` returns ``(batch, n_tags)`` logits (sigmoid gives probabilities).
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch
from torch import nn

from ..config import SEGMENT_S, FeatureConfig, Setting, check_settings, integer, number
from ..registry import Registry

MODELS: Registry[type[MoodModel]] = Registry("model")

# What the models' arguments may be, shared by their ``arg_settings`` (sanity bounds: every configuration of the
# papers and of configs/ is far inside them; a model file asking for more is refused before anything is built).
#: channel / unit multiplier
WIDTH = number(0, 8, lo_open=True)
#: dropout probability
DROPOUT = number(0, 1, hi_open=True)
#: units of a layer (channels, hidden units, embedding size)
UNITS = integer(1, 4096)
#: most units of a fully connected layer
FC_MAX = 16384
#: stacked recurrent or convolutional layers
LAYERS_MAX = 8
LAYERS = integer(1, LAYERS_MAX)
#: input feature width (mel bands)
N_MELS = integer(1, 1024)
#: feature frames per 0.5 s segment
SEGMENT_FRAMES = integer(1, 1000)
#: convolution kernel size
KERNEL = integer(1, 63)
#: bottleneck ratio of an attention / SE block
REDUCTION = integer(1, 1024)

#: The most memory a model file's architecture may ask for (parameters and buffers), in bytes.
MAX_MODEL_BYTES = 2 * 2**30


#: static head (``task`` of a static model) -> number of model outputs (the static task's heads,
#: :mod:`moodscope.tasks.static`, read them from here: the networks size their outputs by them)
STATIC_HEADS: dict[str, int] = {"valence": 1, "arousal": 1, "multitask": 2, "binary": 4, "quadrant": 4}


def n_outputs(task: str) -> int:
    """Number of model outputs for ``task`` (see :data:`STATIC_HEADS`); unknown tasks raise ``ValueError``."""
    if task not in STATIC_HEADS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(STATIC_HEADS)}")
    return STATIC_HEADS[task]


class InputNorm(nn.Module):
    """Per-mel-band standardisation ``(x - mean) / std`` with statistics stored as buffers.

    Shape: ``(batch, channels, frames, n_mels)`` in and out. Before ``set_stats`` is called the module
    applies a fixed affine map, by default one that puts typical dB values near zero (mean -40 dB, std 20 dB).
    """

    def __init__(self, n_mels: int = 128, *, mean: float = -40.0, std: float = 20.0):
        super().__init__()
        self.register_buffer("mean", torch.full((n_mels,), float(mean)))
        self.register_buffer("std", torch.full((n_mels,), float(std)))

    @torch.no_grad()
    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=self.mean.dtype))
        self.std.copy_(torch.as_tensor(std, dtype=self.std.dtype).clamp_min(1e-3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class MoodModel(nn.Module):
    """Base of all registered models. Subclasses set ``output`` and create ``self.norm = InputNorm(n_mels)``.

    Every subclass declares ``arg_settings``: a :class:`~moodscope.config.Setting` for each constructor argument
    (type and bounds; :func:`register_model` refuses a class that leaves one out). :func:`resolve_args` checks
    arguments against them before anything is built; checks between arguments stay in the constructor.
    """

    output: ClassVar[str] = "dynamic"
    arg_settings: ClassVar[dict[str, Setting]] = {}
    model_name: str = ""
    model_args: dict[str, Any]

    def __init__(self) -> None:
        super().__init__()
        self.model_args = {}

    def set_input_stats(self, mean, std) -> None:
        """Set the input normalisation (per-mel-band mean and std of the training features, in dB)."""
        self.norm.set_stats(mean, std)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def check_features(self, features: FeatureConfig) -> None:
        """Raise ``ValueError`` unless ``features`` are what this model reads: frames ``n_mels`` wide and, for
        a model that cuts its input into 0.5 s segments, ``segment_frames`` frames per segment."""
        width = getattr(self, "n_mels", None)
        if width is not None and width != features.n_bins:
            raise ValueError(
                f"their frames are {features.n_bins} values wide; the model reads {width} (n_mels)"
            )
        seg = getattr(self, "segment_frames", None)
        if seg is not None and seg != features.frames_per_segment:
            raise ValueError(
                f"they give {features.frames_per_segment} frames per {SEGMENT_S:g} s segment; the model cuts "
                f"segments of {seg} (segment_frames)"
            )


def _constructor_args(cls) -> list[str]:
    sig = inspect.signature(cls.__init__)
    return [p.name for p in sig.parameters.values() if p.name != "self"]


def register_model(name: str):
    """Class decorator: register a :class:`MoodModel` subclass under ``name``. The class must declare an
    ``arg_settings`` entry for each constructor argument and none for anything else."""

    def deco(cls):
        args = _constructor_args(cls)
        missing = [a for a in args if a not in cls.arg_settings]
        extra = [a for a in cls.arg_settings if a not in args]
        if missing or extra:
            raise TypeError(f"model {name!r}: arg_settings lacks {missing} / declares unknown {extra}")
        cls.model_name = name
        return MODELS.register(name)(cls)

    return deco


def resolve_args(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """Full constructor arguments of model ``name`` (defaults filled in), checked against the model's
    ``arg_settings``: an unknown argument or a value out of its bounds raises
    :class:`~moodscope.config.SettingError` (a ``ValueError``) naming it."""
    cls = MODELS.get(name)
    check_settings(args, cls.arg_settings, what=f"argument of model {name!r}")
    sig = inspect.signature(cls.__init__)
    bound = sig.bind_partial(None, **args)
    bound.apply_defaults()
    out = dict(bound.arguments)
    out.pop("self", None)
    return out


def build_skeleton(name: str, **args: Any) -> MoodModel:
    """Model ``name`` built on the ``meta`` device: every parameter and buffer has its shape, none has
    memory. What a model file's arguments imply can be measured (:func:`model_bytes`) and compared with its
    tensors before anything is allocated."""
    with torch.device("meta"):
        return build(name, **args)


def model_bytes(model: nn.Module) -> int:
    """Bytes of a model's parameters and buffers (at their dtypes; works on a :func:`build_skeleton`)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def build(name: str, **args: Any) -> MoodModel:
    """Build registered model ``name`` with constructor ``args``; records ``model.model_args``.

    >>> from moodscope.models import build
    >>> m = build("damff", width=0.25)  # doctest: +SKIP
    """
    full = resolve_args(name, args)
    model = MODELS.get(name)(**full)
    model.model_name = name
    model.model_args = full
    return model
