"""Classical reference: clip statistics, one-vs-rest logistic tagger, ridge V-A regressor."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
from sklearn.metrics import f1_score, r2_score

from moodscope.classical import ClassicalRegressor, ClassicalTagger, clip_statistics, clip_statistics_batch


def _logmel(frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(-40.0, 10.0, size=(frames, 128))


def test_layout_and_band_statistics_by_hand():
    x = np.zeros((4, 128))
    x[:, 0:4] = [[1.0], [3.0], [1.0], [3.0]]  # band 0: mean 2, std 1
    x[:, 4:8] = np.array([[0.0, 2.0, 4.0, 6.0]] * 4)  # band 1: constant 3 over time (the mean of its 4 mels)
    v = clip_statistics(x)
    assert v.shape == (2 * 32 + 2 * 20,)
    np.testing.assert_allclose(v[0:3], [2.0, 3.0, 0.0])  # band means
    np.testing.assert_allclose(v[32:35], [1.0, 0.0, 0.0])  # band stds (population)


def test_mfcc_part_equals_librosa():
    x = _logmel(300)
    mfcc = librosa.feature.mfcc(S=x.T, n_mfcc=20)  # (20, frames): DCT-II ortho of the dB log-Mel
    v = clip_statistics(x)
    np.testing.assert_allclose(v[64:84], mfcc.mean(axis=1), rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(v[84:104], mfcc.std(axis=1), rtol=1e-10, atol=1e-8)


def test_constant_clip_has_zero_stds_and_only_c0():
    v = clip_statistics(np.full((50, 128), -30.0))
    np.testing.assert_allclose(v[:32], -30.0)
    np.testing.assert_allclose(v[32:64], 0.0)
    np.testing.assert_allclose(v[64], -30.0 * np.sqrt(128))  # orthonormal DCT of a constant: only c0
    np.testing.assert_allclose(v[65:], 0.0, atol=1e-9)


def test_options_and_uneven_band_split():
    v = clip_statistics(_logmel(20)[:, :100], n_bands=30, n_mfcc=13)  # 100 mels into 30 bands
    assert v.shape == (2 * 30 + 2 * 13,)
    X = clip_statistics_batch([_logmel(20, s) for s in range(3)])
    assert X.shape == (3, 104)


@pytest.mark.parametrize(
    "bad, match",
    [(np.zeros(128), "2-d"), (np.zeros((0, 128)), "no frames"), (np.full((3, 128), np.nan), "NaN")],
)
def test_rejects_bad_features(bad, match):
    with pytest.raises(ValueError, match=match):
        clip_statistics(bad)
    with pytest.raises(ValueError, match="n_bands"):
        clip_statistics(np.zeros((3, 16)), n_bands=32)


def _separable_multilabel(n: int, seed: int):
    """Clips whose tag k is on when mel region k is 15 dB louder (tags independent)."""
    rng = np.random.default_rng(seed)
    Y = rng.integers(0, 2, size=(n, 4))
    clips = []
    for y in Y:
        x = rng.normal(-50.0, 4.0, size=(40, 128))
        for k in np.flatnonzero(y):
            x[:, 32 * k : 32 * k + 32] += 15.0
        clips.append(x)
    return clip_statistics_batch(clips), Y


def test_tagger_learns_separable_multilabel():
    Xtr, Ytr = _separable_multilabel(120, 0)
    Xte, Yte = _separable_multilabel(60, 1)
    tagger = ClassicalTagger().fit(Xtr, Ytr)
    p = tagger.predict_proba(Xte)
    assert p.shape == (60, 4) and np.all((p >= 0) & (p <= 1))
    assert f1_score(Yte, tagger.predict(Xte), average="micro") > 0.9
    assert f1_score(Yte, tagger.predict(Xte), average="macro") > 0.9


def test_tagger_with_constant_and_single_varying_tags():
    X, Y = _separable_multilabel(80, 2)
    Y = np.column_stack([np.zeros(80, int), Y[:, 1], np.ones(80, int)])  # never, one real tag, always
    p = ClassicalTagger().fit(X, Y).predict_proba(X)
    np.testing.assert_array_equal(p[:, 0], 0.0)
    np.testing.assert_array_equal(p[:, 2], 1.0)
    assert f1_score(Y[:, 1], p[:, 1] >= 0.5) > 0.9


def test_tagger_validates():
    with pytest.raises(RuntimeError, match="not fitted"):
        ClassicalTagger().predict_proba(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="binary"):
        ClassicalTagger().fit(np.zeros((2, 3)), np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="n_clips=2"):
        ClassicalTagger().fit(np.zeros((2, 3)), np.zeros((3, 2)))


def test_regressor_recovers_linear_va():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 10))
    W = rng.normal(scale=0.1, size=(10, 2))
    Y = X @ W + 0.01 * rng.normal(size=(200, 2))
    reg = ClassicalRegressor(alpha=1e-3).fit(X[:150], Y[:150])
    pred = reg.predict(X[150:])
    assert pred.shape == (50, 2)
    assert r2_score(Y[150:], pred) > 0.95
    one = ClassicalRegressor().fit(X[:150], Y[:150, 0]).predict(X[150:])
    assert one.shape == (50,)


def test_regressor_clips_to_canonical_range():
    X = np.arange(20.0)[:, None]
    y = np.linspace(-0.9, 0.9, 20)
    far = np.array([[200.0], [-200.0]])
    np.testing.assert_allclose(ClassicalRegressor(alpha=1e-6).fit(X, y).predict(far), [1.0, -1.0])
    assert abs(ClassicalRegressor(alpha=1e-6, clip=False).fit(X, y).predict(far)[0]) > 1.0
