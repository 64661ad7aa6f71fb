"""moodscope: music emotion recognition from audio.

Valence-arousal per track, a valence-arousal curve every 0.5 s and emotion tags, with the DAMFF,
ADFF and spectrogram-CNN tagger methods. See the README for the command line.

>>> import moodscope
>>> model = moodscope.load_model()                 # the default model  # doctest: +SKIP
>>> result = model.predict("song.mp3")             # doctest: +SKIP
>>> result.static["valence"], result.dynamic["arousal"]  # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"


def load_model(path=None, device: str = "cpu", precision: str = "float32", frontend: str | None = None):
    """Load a model as a :class:`moodscope.inference.predictor.Predictor`: ``path`` is a model file, a bundled
    model's name (``"default"``, ``"demo"``) or None (the default model: MusiCNN + EMOPIA, see the README).

    ``precision``: ``float32`` (default), ``bf16`` or ``auto`` (bf16 only where the device runs it
    natively); see :mod:`moodscope.precision`. ``frontend``: for models on MusiCNN features, ``"full"`` (the
    network itself, exact; what None means) or ``"student"`` (its distilled front end:
    :mod:`moodscope.models.musicnn_student`, 1.5x faster end to end, close but other numbers).
    """
    from .inference.predictor import Predictor

    return Predictor.from_file(path, device=device, precision=precision, frontend=frontend)


__all__ = ["__version__", "load_model"]
