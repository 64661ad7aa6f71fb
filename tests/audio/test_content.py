"""What the samples say beyond the music (:mod:`moodscope.audio.content`): over range, clipped, no content."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from moodscope.audio import content
from moodscope.audio.content import ContentMeter
from moodscope.audio.decode import load_audio

SR = 22050


def _music(seconds: float = 6.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t)
    y = env * (0.3 * np.sin(2 * np.pi * 330 * t) + 0.1 * np.sin(2 * np.pi * 990 * t))
    return (y + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def _notes(y: np.ndarray) -> list[str]:
    m = ContentMeter(SR)
    m.update(y)
    return m.notes()


def _kinds(notes):
    return sorted(n.split(":")[0] for n in notes)


def test_music_has_nothing_to_say_loud_or_quiet():
    y = _music()
    assert _notes(y) == []
    assert _notes(0.99 / np.abs(y).max() * y) == []  # peaking at full scale once is not clipping
    assert _notes(y * 10 ** (-50 / 20)) == []  # quiet (-60 dBFS peaks) but music
    assert _notes(np.stack([y, 0.5 * _music(seed=1)], 1)) == []  # stereo


def test_each_kind_of_content_free_audio():
    n = 10 * SR
    dc = np.full(n, 0.3, np.float32)
    one = np.zeros(n, np.float32)
    one[5000] = 0.9
    clicks = np.zeros(n, np.float32)
    clicks[:: SR // 2] = 10 ** (-90 / 20)
    for y in (dc, one, clicks):
        assert _kinds(_notes(y)) == ["no musical content"]


def test_over_range_and_clipped():
    y = _music()
    over = _notes(y * 1000)  # a float file 60 dB over full scale
    assert _kinds(over) == ["over range"] and f"{20 * np.log10(np.abs(y).max() * 1000):+.1f} dBFS" in over[0]
    assert _kinds(_notes(y * 1.5)) == []  # a lossy decoder's overshoot is not "over range"
    assert _kinds(_notes(np.clip(y * 10, -1, 1))) == ["clipped"]


@pytest.mark.parametrize("piece", [1, 777, SR // 20, 10_000])
def test_pieces_are_measured_as_the_whole(piece):
    """A file read block by block (the streamed road) gets the same notes as one read whole."""
    for y in (np.clip(_music() * 10, -1, 1), np.zeros(3 * SR, np.float32) + 0.2, _music()):
        whole, parts = ContentMeter(SR), ContentMeter(SR)
        whole.update(y)
        for a in range(0, y.size, piece):
            parts.update(y[a : a + piece])
        assert (parts.clipped, parts.frames, parts.active, parts.peak) == (
            whole.clipped,
            whole.frames,
            whole.active,
            whole.peak,
        )
        assert parts.notes() == whole.notes()


def test_files_are_measured_only_when_someone_listens(tmp_path):
    p = tmp_path / "over.wav"
    sf.write(str(p), _music() * 1000, SR, subtype="FLOAT")
    load_audio(p, sr=16000)  # no collector: nothing measured, nothing raised
    with content.collect() as notes:
        load_audio(p, sr=16000)
        load_audio(p, sr=16000)  # the same note once
    assert _kinds(notes) == ["over range"]


@pytest.mark.parametrize("extras", [(), ("mode",)])
def test_a_feature_cache_hit_keeps_the_notes(tmp_path, extras):
    """Features from the cache decode no audio (without extras): the notes are kept beside them."""
    from moodscope.audio.cache import FeatureCache, file_features
    from moodscope.config import FeatureConfig

    p = tmp_path / "clip.wav"
    sf.write(str(p), np.clip(_music() * 20, -1, 1), SR)
    store = FeatureCache(tmp_path / "cache")
    config = FeatureConfig(sr=16000, n_mels=32, extras=extras) if not extras else None
    config = config or FeatureConfig.for_kind("musicnn", extras=extras)
    for _ in range(2):  # computed, then a hit
        with content.collect() as notes:
            file_features(p, config, cache=store)
        assert _kinds(notes) == ["clipped"]
    file_features(p, config, cache=store)  # without a collector: the cache's notes stay, nothing raised
    with content.collect() as notes:
        file_features(p, config, cache=store)
    assert _kinds(notes) == ["clipped"]
