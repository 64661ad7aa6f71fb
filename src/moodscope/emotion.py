"""Valence-arousal conventions, in one place: Russell's quadrants and the sign of a value.

Valence and arousal live on [-1, 1] (design.md). A value of exactly zero counts as *positive* everywhere in
moodscope: in the quadrant of a prediction, in the quadrant class a static model is trained on
(:func:`moodscope.tasks.static.label_to_class`) and in the corpus's quadrant tags
(:func:`moodscope.datasets.corpus.quadrant_tags`).

Quadrant indices, tags and display names, in index order:

====  ======  =================
 0    happy   ``happy (V+ A+)``
 1    angry   ``angry (V- A+)``
 2    sad     ``sad (V- A-)``
 3    calm    ``calm (V+ A-)``
====  ======  =================
"""

from __future__ import annotations

import numpy as np

#: quadrant tags in index order
QUADRANT_TAGS: tuple[str, ...] = ("happy", "angry", "sad", "calm")
#: display names in index order (the ``quadrant`` field of predict's output)
QUADRANT_NAMES: tuple[str, ...] = ("happy (V+ A+)", "angry (V- A+)", "sad (V- A-)", "calm (V+ A-)")


def positive(x) -> np.ndarray:
    """The sign convention: ``x >= 0`` (zero counts as positive)."""
    return np.asarray(x) >= 0


def quadrant_index(valence, arousal) -> np.ndarray:
    """Quadrant index of V-A points (see the table above).

    Parameters
    ----------
    valence, arousal : float or np.ndarray [shape=(n,)]

    Returns
    -------
    np.ndarray [shape=(n,)] of int64 (0-d for scalar input)
    """
    v = np.asarray(valence, dtype=np.float64)
    a = np.asarray(arousal, dtype=np.float64)
    if v.shape != a.shape:
        raise ValueError(f"valence and arousal shapes differ: {v.shape} vs {a.shape}")
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(a))):
        raise ValueError("valence/arousal contain NaN or inf")
    vp, ap = positive(v), positive(a)
    return np.where(ap, np.where(vp, 0, 1), np.where(vp, 3, 2)).astype(np.int64)


def quadrant_name(valence: float, arousal: float) -> str:
    """Display name of the quadrant of one V-A point, e.g. ``"calm (V+ A-)"``."""
    return QUADRANT_NAMES[int(quadrant_index(valence, arousal))]
