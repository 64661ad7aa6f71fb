"""The bundled demo model: it loads, says what it was trained on, and each corpus cue moves its prediction.

Cue isolation (design.md, "Shortcut learning"): render the same clip twice with one cue pinned low and then
high while every other cue is identical, and check that the prediction of the cue's label moves the
documented way. A model that learned only the cheapest cues (loudness, register) fails this.
"""

from __future__ import annotations

import numpy as np
import pytest

import moodscope
from moodscope.datasets.corpus import CUES, render_clip
from moodscope.inference.predictor import bundled_model_path

pytestmark = pytest.mark.skipif(
    not bundled_model_path("demo").is_file(), reason="no bundled demo model in this checkout"
)


@pytest.fixture(scope="module")
def model():
    return moodscope.load_model("demo")


def test_metadata_says_synthetic(model):
    info = model.bundle.info
    assert "synthetic" in info["trained_on"]
    assert "synthetic" in info["description"]
    assert model.task.kind == "dynamic"
    assert model.bundle.path.stat().st_size < 5 * 2**20  # a few MB at most


@pytest.mark.parametrize("cue", [c.name for c in CUES])
def test_each_cue_moves_its_label(model, cue):
    spec = next(c for c in CUES if c.name == cue)
    dim = 0 if spec.label == "valence" else 1
    n = 40  # 20 s at 2 Hz, neutral labels: only the pinned cue differs between the two renders
    moves, other = [], []
    for seed in (11, 12):
        preds = []
        for value in (-0.8, 0.8):
            y, _ = render_clip(np.zeros(n), np.zeros(n), seed=seed, cue_overrides={cue: value})
            curve = model.predict(y, sr=44100).dynamic
            preds.append(np.array([np.mean(curve["valence"]), np.mean(curve["arousal"])]))
        moves.append(preds[1][dim] - preds[0][dim])
        other.append(abs(preds[1][1 - dim] - preds[0][1 - dim]))
    move = float(np.mean(moves))
    print(f"{cue:>12s} ({spec.label}): label moves {move:+.3f}, other label {np.mean(other):.3f}")
    # the cue's full swing (-0.8 -> +0.8) moves its label by ~1.6 x weight (0.24-0.48) in the ground truth
    assert move > 0.05, f"{cue}: prediction of {spec.label} moved {move:+.3f} (expected up)"
