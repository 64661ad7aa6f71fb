"""Key profiles and the key-invariant mode features (moodscope.audio.tonal), and the ``mode`` feature extra."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf

from moodscope.audio import tonal
from moodscope.audio.cache import file_features
from moodscope.audio.decode import load_audio
from moodscope.audio.features import compute_features
from moodscope.config import MUSICNN_EMBEDDING, FeatureConfig

SR = 16000


def chords(pitches_seq, seconds_each=1.0, sr=SR) -> np.ndarray:
    """Piano-like tones (decaying harmonics) of each chord in turn."""
    out = []
    t = np.arange(int(seconds_each * sr)) / sr
    env = np.exp(-2.0 * t)
    for pitches in pitches_seq:
        y = np.zeros_like(t)
        for p in pitches:
            f = 440.0 * 2 ** ((p - 69) / 12)
            for h in range(1, 5):
                y += np.sin(2 * np.pi * f * h * t) / h**1.5
        out.append(0.1 * env * y)
    return np.concatenate(out).astype(np.float32)


def cadence(tonic: int, minor: bool) -> np.ndarray:
    third = 3 if minor else 4
    sixth = 8 if minor else 9
    seq = [
        (tonic, tonic + third, tonic + 7),
        (tonic + 5, tonic + sixth, tonic + 12),
        (tonic + 7, tonic + 11, tonic + 14),
    ]
    return chords(seq * 4)  # i-iv-V (or I-IV-V) four times: 12 s


def test_key_correlations_find_the_key_of_a_profile():
    corr = tonal.key_correlations(np.roll(tonal.KK_MINOR, 9))  # A minor's own profile
    assert corr.shape == (2, 12) and np.unravel_index(corr.argmax(), corr.shape) == (1, 9)
    assert np.isclose(corr.max(), 1.0)
    assert np.all(tonal.key_correlations(np.ones(12)) == 0)  # a flat histogram has no key
    batch = tonal.key_correlations(np.stack([tonal.KK_MAJOR, np.roll(tonal.KK_MAJOR, 2)]))
    assert batch.shape == (2, 2, 12) and batch[1, 0].argmax() == 2
    with pytest.raises(ValueError, match="12 values"):
        tonal.key_correlations(np.ones(11))


@pytest.mark.parametrize("tonic", [60, 62, 67])
def test_mode_features_tell_major_from_minor_in_any_key(tonic):
    steps = 24
    major = tonal.mode_features(cadence(tonic, False), SR, steps)
    minor = tonal.mode_features(cadence(tonic, True), SR, steps)
    assert major.shape == (steps, tonal.MODE_BINS) == (24, 19)
    mid = slice(4, 20)  # away from the ends, where the contexts are cut
    assert (major[mid, 2] > minor[mid, 2]).all() and (major[mid, 5] > minor[mid, 5]).all()
    assert major[mid, 5].mean() > 0 > minor[mid, 5].mean()
    # the profile relative to the key: the major third sounds in major, the minor third in minor
    assert major[mid, 6 + 4].mean() > major[mid, 6 + 3].mean()
    assert minor[mid, 6 + 3].mean() > minor[mid, 6 + 4].mean()
    assert np.allclose(major[mid, 6:18].sum(1), 1.0, atol=1e-5)
    assert (major[mid, 18] == 0).mean() >= 0.9 and (minor[mid, 18] == 1).mean() >= 0.9  # the best key's mode


def test_mode_features_do_not_depend_on_the_key():
    a = tonal.mode_features(cadence(60, False), SR, 24)
    b = tonal.mode_features(cadence(65, False), SR, 24)
    assert np.abs(a[4:20, :6] - b[4:20, :6]).max() < 0.15
    assert np.abs(a[4:20, 6:] - b[4:20, 6:]).max() < 0.15  # harmonics fall differently in another register


def test_mode_features_of_silence_are_zero_and_rate_is_checked():
    assert np.all(tonal.mode_features(np.zeros(SR * 3, np.float32), SR, 6) == 0)
    with pytest.raises(ValueError, match="16000 Hz"):
        tonal.mode_features(np.zeros(1000, np.float32), 22050, 1)


def test_mode_extra_appends_columns_and_keeps_cache_keys(tmp_path):
    c = dataclasses.replace(MUSICNN_EMBEDDING, extras=("mode",))
    assert c.n_bins == 250 + 19 and c.without_extras() == MUSICNN_EMBEDDING
    assert FeatureConfig.from_dict(c.to_dict()) == c and "extras" not in MUSICNN_EMBEDDING.to_dict()
    with pytest.raises(ValueError, match="extras"):
        FeatureConfig(extras=("mode",))  # a log-Mel has no extras
    y = cadence(60, True)[: SR * 5]
    path = tmp_path / "c.wav"
    sf.write(path, y, SR)
    full = compute_features(load_audio(path, sr=SR), c)
    assert full.shape == (10, 269)
    assert np.allclose(full[:, :250], compute_features(load_audio(path, sr=SR), MUSICNN_EMBEDDING), atol=1e-5)
    assert np.allclose(full[:, 250:], tonal.mode_features(load_audio(path, sr=SR), SR, 10))
    assert np.allclose(file_features(path, c, cache=False), full, atol=1e-5)


def test_level_ceiling_brings_loud_tracks_down_and_leaves_quiet_ones():
    y = cadence(60, False)[: SR * 4]  # RMS about -26 dBFS
    c = dataclasses.replace(MUSICNN_EMBEDDING, level_db=-40.0)
    assert "level_db" not in MUSICNN_EMBEDDING.to_dict() and FeatureConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="level_db"):
        FeatureConfig(level_db=-20.0)
    loud, louder = compute_features(y, c), compute_features(4 * y, c)
    assert np.allclose(loud, louder, atol=1e-4)  # both above the ceiling: the same input to the network
    quiet = compute_features(0.001 * y, c)  # below the ceiling: untouched
    assert np.allclose(quiet, compute_features(0.001 * y, MUSICNN_EMBEDDING), atol=1e-5)
