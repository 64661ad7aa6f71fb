"""ADFF static-label protocols: segmenting, folds by clip, classes, whole-track aggregation, schedule."""

from __future__ import annotations

import numpy as np
import pytest

from moodscope.protocols import (
    SILENCE_DB,
    adff_lr_milestones,
    aggregate_track,
    crop_or_pad,
    decode_static,
    full_segments,
    kfold_by_clip,
    label_to_class,
    quadrant_of,
    segment_track,
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


def test_segment_track_pads_with_silence():
    rng = np.random.default_rng(0)
    feats = rng.normal(-40, 10, size=(300, 128)).astype(np.float32)
    wins, spans = segment_track(feats, 10)
    assert wins.shape == (1, 1000, 128) and wins.dtype == np.float32 and spans.pad == 700
    np.testing.assert_array_equal(wins[0, :300], feats)
    assert np.all(wins[0, 300:] == SILENCE_DB)
    feats = rng.normal(size=(4700, 16))
    wins, spans = segment_track(feats, 10)
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


def test_crop_or_pad():
    feats = np.arange(20, dtype=np.float32).reshape(10, 2)
    np.testing.assert_array_equal(crop_or_pad(feats, 2, 3), feats[2:5])
    out = crop_or_pad(feats, 8, 4, pad_value=0.0)
    np.testing.assert_array_equal(out, [[16, 17], [18, 19], [0, 0], [0, 0]])
    assert crop_or_pad(feats, 9, 2)[1, 0] == SILENCE_DB
    with pytest.raises(ValueError, match="outside"):
        crop_or_pad(feats, 10, 2)
    with pytest.raises(ValueError, match="shape"):
        crop_or_pad(feats[:, 0], 0, 2)


# ------------------------------------------------------------------------------------------------- folds


def test_kfold_by_clip_disjoint_and_covering():
    rng = np.random.default_rng(0)
    ids = np.repeat([f"clip{i}" for i in range(23)], rng.integers(1, 6, size=23))  # 1-5 segments per clip
    folds = kfold_by_clip(ids, k=5, seed=0)
    assert len(folds) == 5
    seen = np.zeros(len(ids), dtype=int)
    for train, test in folds:
        assert len(np.intersect1d(train, test)) == 0
        assert len(train) + len(test) == len(ids)
        assert not set(ids[train]) & set(ids[test])  # no clip on both sides
        seen[test] += 1
    assert np.all(seen == 1)  # every item tested exactly once
    n_clips = [len(set(ids[test])) for _, test in folds]
    assert sorted(n_clips) == [4, 4, 5, 5, 5]  # 23 clips in near-equal groups


def test_kfold_by_clip_seeded():
    ids = np.repeat(np.arange(30), 3)
    a = kfold_by_clip(ids, k=5, seed=1)
    b = kfold_by_clip(ids, k=5, seed=1)
    c = kfold_by_clip(ids, k=5, seed=2)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    assert not all(np.array_equal(x[1], y[1]) for x, y in zip(a, c))


def test_kfold_by_clip_too_few_clips():
    with pytest.raises(ValueError, match="folds"):
        kfold_by_clip(["a", "a", "b", "c"], k=5)


# ------------------------------------------------------------------------------------------------ labels


def test_label_to_class_quadrants_and_zero():
    v = np.array([0.5, -0.5, -0.5, 0.5, 0.0, 0.0, -0.1])
    a = np.array([0.5, 0.5, -0.5, -0.5, 0.0, -0.2, 0.0])
    np.testing.assert_array_equal(label_to_class(v, a, "quadrant"), [0, 1, 2, 3, 0, 3, 1])
    np.testing.assert_array_equal(
        label_to_class(v, a, "binary"), [[1, 1], [0, 1], [0, 0], [1, 0], [1, 1], [1, 0], [0, 1]]
    )
    assert int(quadrant_of(-0.3, -0.9)) == 2
    with pytest.raises(ValueError, match="regression"):
        label_to_class(v, a, "multitask")
    with pytest.raises(ValueError, match="unknown task"):
        label_to_class(v, a, "mood")


# ----------------------------------------------------------------------------------------------- tracks


def test_aggregate_regression_is_window_mean():
    out = np.array([[0.2, -0.4], [0.6, 0.0], [-0.2, 0.1]])
    np.testing.assert_allclose(aggregate_track(out, "multitask"), [0.2, -0.1])
    np.testing.assert_allclose(aggregate_track(out[:, :1], "valence"), [0.2])
    assert decode_static(aggregate_track(out, "multitask"), "multitask") == {
        "quadrant": 3,
        "valence": pytest.approx(0.2),
        "arousal": pytest.approx(-0.1),
    }
    assert decode_static([0.4], "arousal") == {"quadrant": None, "arousal": 0.4}


def test_aggregate_quadrant_mean_of_softmax():
    # window 1 is confident in class 2, windows 2-3 mildly prefer class 0: the mean probability picks 2,
    # a majority vote of the windows' classes would pick 0
    logits = np.array([[0.0, 0.0, 10.0, 0.0], [1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    p = aggregate_track(logits, "quadrant")
    e = np.exp(1.0)
    expected = (np.array([0, 0, 1, 0]) + 2 * np.array([e, 1, 1, 1]) / (e + 3)) / 3  # window 1 ~ one-hot
    np.testing.assert_allclose(p, expected, atol=1e-4)
    assert p.sum() == pytest.approx(1.0)
    assert decode_static(p, "quadrant")["quadrant"] == 2
    assert np.bincount(logits.argmax(axis=1)).argmax() == 0


def test_aggregate_binary_softmax_per_dimension():
    logits = np.array([[0.0, np.log(3.0), 0.0, 0.0], [0.0, 0.0, np.log(4.0), 0.0]])
    p = aggregate_track(logits, "binary")
    # valence: P(+) = (3/4 + 1/2) / 2; arousal: P(-) = (1/2 + 4/5) / 2
    np.testing.assert_allclose(p, [0.375, 0.625, 0.65, 0.35])
    d = decode_static(p, "binary")
    assert d["classes"] == {"valence": 1, "arousal": 0} and d["quadrant"] == 3


def test_aggregate_bad_shape():
    with pytest.raises(ValueError, match="shape"):
        aggregate_track(np.zeros((3, 2)), "quadrant")
    with pytest.raises(ValueError, match="NaN"):
        aggregate_track([[np.nan, 0.0]], "multitask")


# ---------------------------------------------------------------------------------------------- schedule


def test_schedule_constants_and_torch_scheduler():
    import torch

    s = adff_lr_milestones()
    assert (s.lr, s.weight_decay, s.epochs, s.batch_size) == (1e-5, 1e-5, 200, 32)
    assert s.milestones == (20, 45, 80, 110, 140, 170)
    assert s.lr_at(0) == 1e-5 and s.lr_at(19) == 1e-5
    assert s.lr_at(20) == pytest.approx(1e-5 * s.gamma)
    assert s.lr_at(199) == pytest.approx(1e-5 * s.gamma**6)
    opt, sched = s.make([torch.nn.Parameter(torch.zeros(1))])
    assert opt.defaults["weight_decay"] == 1e-5
    for epoch in range(s.epochs):
        assert opt.param_groups[0]["lr"] == pytest.approx(s.lr_at(epoch)), epoch
        opt.step()
        sched.step()
