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

from ..registry import Registry

MODELS: Registry[type[MoodModel]] = Registry("model")


class InputNorm(nn.Module):
    """Per-mel-band standardisation ``(x - mean) / std`` with statistics stored as buffers.

    Shape: ``(batch, channels, frames, n_mels)`` in and out. Before ``set_stats`` is called the module
    applies a fixed affine map that puts typical dB values near zero (mean -40 dB, std 20 dB).
    """

    def __init__(self, n_mels: int = 128):
        super().__init__()
        self.register_buffer("mean", torch.full((n_mels,), -40.0))
        self.register_buffer("std", torch.full((n_mels,), 20.0))

    @torch.no_grad()
    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=self.mean.dtype))
        self.std.copy_(torch.as_tensor(std, dtype=self.std.dtype).clamp_min(1e-3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class MoodModel(nn.Module):
    """Base of all registered models. Subclasses set ``output`` and create ``self.norm = InputNorm(n_mels)``."""

    output: ClassVar[str] = "dynamic"
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


def register_model(name: str):
    """Class decorator: register a :class:`MoodModel` subclass under ``name``."""

    def deco(cls):
        cls.model_name = name
        return MODELS.register(name)(cls)

    return deco


def resolve_args(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """Full constructor arguments of model ``name`` (defaults filled in); unknown arguments raise."""
    cls = MODELS.get(name)
    sig = inspect.signature(cls.__init__)
    params = [p for p in sig.parameters.values() if p.name != "self"]
    names = {p.name for p in params}
    unknown = set(args) - names
    if unknown:
        raise TypeError(f"model {name!r} has no argument(s) {sorted(unknown)}; it takes {sorted(names)}")
    bound = sig.bind_partial(None, **args)
    bound.apply_defaults()
    out = dict(bound.arguments)
    out.pop("self", None)
    return out


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
