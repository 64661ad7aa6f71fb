"""The default model: valence-arousal heads on frozen MSD-MusiCNN embeddings (moodscope's own design).

Nothing here is from a paper. The pretrained network (Pons & Serra's MusiCNN, trained on the Million Song
Dataset's last.fm tags, :mod:`moodscope.models.musicnn`) runs once per track as the feature extractor
(``FeatureConfig(kind="musicnn")``: its 200-unit embedding and 50 tag logits on a 3 s window around every
0.5 s step, cached like any features); this module is the small trainable part on top. Essentia's published
valence/arousal models are the same idea (a small head on the MSD-MusiCNN embedding); ours adds a
recurrent layer over the 0.5 s steps so that one network gives the curve, the static point (the curve's
mean) and the quadrant, and is trained on clip-level quadrant labels (EMOPIA) and 2 Hz curves (the synthetic
corpus) together (:class:`moodscope.tasks.mood.MoodTask`).
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import MODE_BINS, MUSICNN_BINS, FeatureConfig, flag
from .base import DROPOUT, UNITS, WIDTH, InputNorm, MoodModel, register_model
from .sequence import _check_width


@register_model("musicnn_va")
class MusicnnVA(MoodModel):
    """Per-step valence-arousal from MusiCNN embeddings: standardise, project, BiGRU, linear, tanh.

    Input ``(batch, 1, steps, 269)`` (``kind="musicnn"`` features with the ``mode`` extra, one row per 0.5 s:
    embedding, MSD tag logits, 19 key-invariant mode features), output ``(batch, steps, 2)`` valence and
    arousal in (-1, 1).

    Chosen (our design, tuned on EMOPIA's validation split):

    - the mode features (:mod:`moodscope.audio.tonal`) beside the embedding: the frozen MSD embedding tells
      major from minor versions of the same piano pieces on only about 62 % of held-out pieces (a linear
      probe), and mode is a main cue of valence;
    - ``InputNorm`` over the inputs (mean/std of the training features), dropout ``input_dropout`` on
      them (the embedding is 200 correlated units; dropping some regularises the head);
    - ``Linear(n_bins, hidden)`` + GELU, a one-layer bidirectional GRU of ``hidden`` units per direction (the
      curve follows the music, the context is the 30 s window), ``Linear(2 hidden, 2)`` + ``tanh``.

    Parameters
    ----------
    mode_features : bool
        Read the ``mode`` extra (19 more inputs per step).
    width : float
        Multiplier of ``hidden`` (CPU-sized variants, as every model).
    hidden : int
        Units of the projection and of each GRU direction at ``width=1``.
    dropout : float
        Before the GRU and before the output layer.
    input_dropout : float
    """

    output = "mood"
    feature_kind = "musicnn"
    arg_settings = {
        "mode_features": flag(),
        "width": WIDTH,
        "hidden": UNITS,
        "dropout": DROPOUT,
        "input_dropout": DROPOUT,
    }

    def __init__(
        self,
        *,
        mode_features: bool = True,
        width: float = 1.0,
        hidden: int = 64,
        dropout: float = 0.3,
        input_dropout: float = 0.2,
    ):
        super().__init__()
        _check_width(width)
        h = max(4, int(round(hidden * width)))
        n_bins = MUSICNN_BINS + (MODE_BINS if mode_features else 0)
        self.n_mels, self.segment_frames = (
            n_bins,
            1,
        )  # one feature row per 0.5 s step (sliding-window contract)
        self.norm = InputNorm(n_bins)
        self.input_dropout = nn.Dropout(input_dropout)
        self.proj = nn.Sequential(nn.Linear(n_bins, h), nn.GELU(), nn.Dropout(dropout))
        self.gru = nn.GRU(h, h, batch_first=True, bidirectional=True)
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * h, 2))

    @staticmethod
    def feature_config(args: dict) -> FeatureConfig:
        """The features this model reads, from its resolved constructor arguments."""
        return FeatureConfig.for_kind("musicnn", extras=("mode",) if args.get("mode_features", True) else ())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_dropout(self.norm(x[:, 0].float()))  # (batch, steps, n_bins)
        h, _ = self.gru(self.proj(x))
        return torch.tanh(self.out(h))
