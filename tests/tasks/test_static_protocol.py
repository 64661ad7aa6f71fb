"""ADFF static-label protocols: segmenting, classes, whole-track aggregation, the paper's schedule in the configs."""

from __future__ import annotations

import numpy as np
import pytest

from moodscope.emotion import quadrant_index
from moodscope.tasks.static import (
    SILENCE_DB,
    aggregate_track,
    full_segments,
    label_to_class,
    segment_windows,
    simple_crops,
)

# ---------------------------------------------------------------------------------------------- full dataset


def test_full_segments_47s():
    spans = full_segments(4700, 10)
    assert spans == [(0, 1000), (1000, 2000), (2000, 3000), (3000, 4000), (3700, 4700)]
    assert spans.pad == 0


def test_full_segments_42s_drops_last_2s():
    assert full_segments(4200, 10) == [(0, 1000), (1000, 2000), (2000, 3000), (3000, 4000)]


def test_full_segments_half_remainder_is_kept():
    # 45 s: the 5 s remainder is exactly seg_len / 2, not "less than" it -> kept, extended back to 35 s
    assert full_segments(4500, 10)[-1] == (3500, 4500)
    assert full_segments(4499, 10)[-1] == (3000, 4000)  # 4.99 s remainder -> dropped


def test_full_segments_exact_multiple_and_exact_length():
    assert full_segments(4000, 10) == [(0, 1000), (1000, 2000), (2000, 3000), (3000, 4000)]
    s = full_segments(1000, 10)
    assert s == [(0, 1000)] and s.pad == 0


def test_full_segments_short_clip_padded():
    s = full_segments(300, 10)
    assert s == [(0, 1000)] and s.pad == 700
    s = full_segments(300, 5, fps=50)  # 250-frame segments at 50 fps: 300 frames -> 1 whole + 50 dropped
    assert s == [(0, 250)] and s.pad == 0


def test_full_segments_bad_input():
    with pytest.raises(ValueError, match="frame"):
        full_segments(0, 10)
    with pytest.raises(ValueError, match="seg_len"):
        full_segments(100, 0)


def test_track_windows_pad_with_silence():
    rng = np.random.default_rng(0)
    feats = rng.normal(-40, 10, size=(300, 128)).astype(np.float32)
    wins = segment_windows(feats, 10, 100.0, SILENCE_DB)
    assert wins.shape == (1, 1000, 128) and wins.dtype == np.float32
    np.testing.assert_array_equal(wins[0, :300], feats)
    assert np.all(wins[0, 300:] == SILENCE_DB)
    feats = rng.normal(size=(4700, 16)).astype(np.float32)
    wins = segment_windows(feats, 10, 100.0, SILENCE_DB)
    assert wins.shape == (5, 1000, 16)
    np.testing.assert_array_equal(wins[4], feats[3700:4700])


# -------------------------------------------------------------------------------------------- simple dataset


def test_simple_crops_inside_clip_and_uniform():
    rng = np.random.default_rng(0)
    starts = []
    for _ in range(2000):
        (span,) = simple_crops(4700, 10, rng)
        assert span[1] - span[0] == 1000 and 0 <= span[0] and span[1] <= 4700
        starts.append(span[0])
    starts = np.array(starts)
    assert starts.min() < 100 and starts.max() > 3600  # covers [0, 3700]
    assert abs(starts.mean() - 1850) < 100  # uniform mean 1850, sd ~1068 / sqrt(2000) = 24


def test_simple_crops_seeded_and_short_clip():
    a = simple_crops(4700, 10, np.random.default_rng(5))
    b = simple_crops(4700, 10, np.random.default_rng(5))
    assert a == b
    assert simple_crops(300, 10, np.random.default_rng(0)) == [(0, 1000)]
    assert simple_crops(1000, 10, np.random.default_rng(0)) == [(0, 1000)]


# ------------------------------------------------------------------------------------------------ labels


def test_label_to_class_quadrants_and_zero():
    v = np.array([0.5, -0.5, -0.5, 0.5, 0.0, 0.0, -0.1])
    a = np.array([0.5, 0.5, -0.5, -0.5, 0.0, -0.2, 0.0])
    np.testing.assert_array_equal(label_to_class(v, a, "quadrant"), [0, 1, 2, 3, 0, 3, 1])
    np.testing.assert_array_equal(
        label_to_class(v, a, "binary"), [[1, 1], [0, 1], [0, 0], [1, 0], [1, 1], [1, 0], [0, 1]]
    )
    assert int(quadrant_index(-0.3, -0.9)) == 2
    with pytest.raises(ValueError, match="regression"):
        label_to_class(v, a, "multitask")
    with pytest.raises(ValueError, match="unknown task"):
        label_to_class(v, a, "mood")


# ----------------------------------------------------------------------------------------------- tracks


def test_aggregate_regression_is_window_mean():
    out = np.array([[0.2, -0.4], [0.6, 0.0], [-0.2, 0.1]])
    np.testing.assert_allclose(aggregate_track(out, "multitask"), [0.2, -0.1])
    np.testing.assert_allclose(aggregate_track(out[:, :1], "valence"), [0.2])


def test_aggregate_quadrant_mean_of_softmax():
    # window 1 is confident in class 2, windows 2-3 mildly prefer class 0: the mean probability picks 2,
    # a majority vote of the windows' classes would pick 0
    logits = np.array([[0.0, 0.0, 10.0, 0.0], [1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    p = aggregate_track(logits, "quadrant")
    e = np.exp(1.0)
    expected = (np.array([0, 0, 1, 0]) + 2 * np.array([e, 1, 1, 1]) / (e + 3)) / 3  # window 1 ~ one-hot
    np.testing.assert_allclose(p, expected, atol=1e-4)
    assert p.sum() == pytest.approx(1.0)
    assert p.argmax() == 2
    assert np.bincount(logits.argmax(axis=1)).argmax() == 0


def test_aggregate_binary_softmax_per_dimension():
    logits = np.array([[0.0, np.log(3.0), 0.0, 0.0], [0.0, 0.0, np.log(4.0), 0.0]])
    p = aggregate_track(logits, "binary")
    # valence: P(+) = (3/4 + 1/2) / 2; arousal: P(-) = (1/2 + 4/5) / 2
    np.testing.assert_allclose(p, [0.375, 0.625, 0.65, 0.35])
    assert (p[:2].argmax(), p[2:].argmax()) == (1, 0)  # V+ A-


def test_aggregate_bad_shape():
    with pytest.raises(ValueError, match="shape"):
        aggregate_track(np.zeros((3, 2)), "quadrant")
    with pytest.raises(ValueError, match="NaN"):
        aggregate_track([[np.nan, 0.0]], "multitask")


# ---------------------------------------------------------------------------------------------- schedule


def test_adff_configs_carry_the_papers_schedule():
    """§3.2: Adam, lr 1e-5, weight decay 1e-5, step decay at epochs 20-170 (gamma 0.5 is our choice)."""
    from pathlib import Path

    from moodscope.training.config import load_config

    configs = sorted((Path(__file__).parents[2] / "configs").glob("adff_*.yaml"))
    assert configs
    for path in configs:
        t = load_config(path)["train"]
        assert (t["lr"], t["weight_decay"], t["gamma"]) == (1e-5, 1e-5, 0.5), path.name
        assert list(t["milestones"]) == [20, 45, 80, 110, 140, 170], path.name
