"""The ``kind="musicnn"`` features: settings rules, the MusiCNN input compression, the per-step embedding
(shapes, short clips, blocked front end), and files (cache, no chunking, one block)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from moodscope.audio import features as audio_features
from moodscope.audio import source as audio_source
from moodscope.audio.cache import FeatureCache, file_features
from moodscope.audio.features import MusicnnEmbedding, compute_features, iter_file_features
from moodscope.config import MUSICNN_EMBEDDING, FeatureConfig
from tools import needs

SR16 = 16000


def music_like(duration: float, sr: int = SR16, seed: int = 0) -> np.ndarray:
    """A tone with a slow swell, a gated high tone (abrupt changes every second) and noise, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(duration * sr))) / sr
    y = (
        0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.3 * t))
        + 0.2 * np.sin(2 * np.pi * 1500 * t) * (t % 2 < 1)
        + 0.05 * rng.standard_normal(t.size)
    )
    return y.astype(np.float32)


# ----------------------------------------------------------------------------------------------------
# settings


def test_musicnn_kind_rejects_other_mel_settings_and_names_them():
    with pytest.raises(ValueError, match="musicnn") as e:
        FeatureConfig(kind="musicnn")  # the log-Mel defaults: 44.1 kHz, 128 bands, ...
    for name in ("sr", "n_mels", "n_fft", "hop_length", "compression"):
        assert name in str(e.value)
    with pytest.raises(ValueError, match="n_mels") as e:
        FeatureConfig.for_kind("musicnn", n_mels=128)
    assert "hop_length" not in str(e.value)  # only what differs is named
    with pytest.raises(ValueError, match="compression"):
        FeatureConfig(compression="log")
    with pytest.raises(ValueError, match="kind"):
        FeatureConfig(kind="cqt")


def test_musicnn_kind_grid_and_width():
    c = MUSICNN_EMBEDDING
    assert c.kind == "musicnn" and (c.sr, c.n_mels, c.n_fft, c.hop_length) == (16000, 96, 512, 256)
    assert c.compression == "musicnn"
    assert c.frames_per_second == 2.0 and c.frames_per_segment == 1 and c.n_bins == 250
    assert not c.streams and FeatureConfig().streams and FeatureConfig(kind="waveform").streams
    assert FeatureConfig.for_kind("musicnn") == c
    assert FeatureConfig.for_kind("logmel") == FeatureConfig()
    inp = c.input_config()
    assert inp.kind == "logmel" and inp.n_bins == 96 and inp.compression == "musicnn"
    assert dataclasses.replace(inp, kind="musicnn") == c
    assert FeatureConfig().input_config() == FeatureConfig()


def test_musicnn_to_dict_round_trip_and_default_keys_unchanged():
    d = MUSICNN_EMBEDDING.to_dict()
    assert d["kind"] == "musicnn" and d["compression"] == "musicnn"
    assert FeatureConfig.from_dict(json.loads(json.dumps(d))) == MUSICNN_EMBEDDING
    # the default compression and extras are left out, so cache keys and model files made before them stay the same
    plain = FeatureConfig().to_dict()
    assert "compression" not in plain
    assert set(plain) == {f.name for f in dataclasses.fields(FeatureConfig)} - {
        "compression",
        "extras",
        "level_db",
        "loudness_lufs",
        "frontend",
    }
    assert FeatureConfig.from_dict(plain) == FeatureConfig()
    assert "compression" not in FeatureConfig().key()
    assert MUSICNN_EMBEDDING.key() != MUSICNN_EMBEDDING.input_config().key()


# ----------------------------------------------------------------------------------------------------
# computation


def test_musicnn_compression_equals_librosa():
    import librosa

    y = music_like(2.0)
    ours = compute_features(y, MUSICNN_EMBEDDING.input_config())
    S = librosa.feature.melspectrogram(y=y, sr=SR16, n_fft=512, hop_length=256, n_mels=96)
    ref = np.log10(1.0 + 10000.0 * S).T
    assert ours.shape == ref.shape == (1 + y.size // 256, 96)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5)  # measured 5e-7 (values up to ~6)
    assert float(compute_features(np.zeros(4000, np.float32), MUSICNN_EMBEDDING.input_config()).max()) == 0.0


@pytest.mark.parametrize("n", [8000, 8001, 15999, 16000 * 2 + 100, 16000 * 4])
def test_embedding_one_row_per_half_second(n):
    f = compute_features(music_like(n / SR16)[:n], MUSICNN_EMBEDDING)
    assert f.shape == (n // 8000, 250) and f.dtype == np.float32 and np.isfinite(f).all()


def test_less_than_one_step_still_gives_one_row():
    assert compute_features(music_like(0.3), MUSICNN_EMBEDDING).shape == (1, 250)


def test_clip_shorter_than_the_window_is_one_padded_patch():
    """Under 3 s every step's window is the whole (silence-padded) 187-frame patch: equal rows, equal to
    the network run on that patch."""
    from moodscope.models.musicnn import PATCH_FRAMES, load_musicnn

    y = music_like(2.0)
    f = compute_features(y, MUSICNN_EMBEDDING)
    assert f.shape == (4, 250)
    np.testing.assert_allclose(f, np.broadcast_to(f[:1], f.shape), rtol=0, atol=1e-5)
    mel = compute_features(y, MUSICNN_EMBEDDING.input_config())
    patch = np.zeros((PATCH_FRAMES, 96), np.float32)
    patch[: len(mel)] = mel
    with torch.inference_mode():
        out = load_musicnn("msd").embed(torch.from_numpy(patch)[None])
    ref = torch.cat([out["embedding"], out["logits"]], dim=-1)[0].numpy()
    np.testing.assert_allclose(f[0], ref, rtol=0, atol=1e-4)


def test_embedding_columns_are_embedding_then_tag_logits():
    """Columns :200 are the embedding and 200: the MSD tag logits of the 3 s window: on a clip of exactly
    one patch (187 frames: every step's window is the whole clip) they equal the network's per-patch output."""
    from moodscope.models.musicnn import PATCH_FRAMES, load_musicnn

    y = music_like(3.0)[: (PATCH_FRAMES - 1) * 256]
    f = compute_features(y, MUSICNN_EMBEDDING)
    assert f.shape == (5, 250)
    mel = compute_features(y, MUSICNN_EMBEDDING.input_config())
    assert mel.shape == (PATCH_FRAMES, 96)
    with torch.inference_mode():
        out = load_musicnn("msd").embed(torch.from_numpy(mel)[None])
    np.testing.assert_allclose(f[0, :200], out["embedding"][0].numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(f[0, 200:], out["logits"][0].numpy(), rtol=0, atol=1e-4)


def test_blocked_front_end_equals_one_pass(monkeypatch):
    y = music_like(12.0)  # 751 frames
    whole = compute_features(y, MUSICNN_EMBEDDING)
    monkeypatch.setattr(MusicnnEmbedding, "BLOCK", 200)
    monkeypatch.setattr(MusicnnEmbedding, "CONTEXT", 100)  # > the front and mid end's reach (73 frames)
    blocked = compute_features(y, MUSICNN_EMBEDDING)
    assert blocked.shape == whole.shape == (24, 250)
    np.testing.assert_allclose(blocked, whole, rtol=0, atol=1e-4)  # measured 2e-6 (values up to ~10)
    # the blocked path is really taken: without enough context the block edges show
    monkeypatch.setattr(MusicnnEmbedding, "CONTEXT", 2)
    assert np.abs(compute_features(y, MUSICNN_EMBEDDING) - whole).max() > 1e-2


def test_embedding_rejects_multichannel_input():
    emb = MusicnnEmbedding(MUSICNN_EMBEDDING)
    with pytest.raises(ValueError, match="mono"):
        emb(torch.zeros(2, 16000))


# ----------------------------------------------------------------------------------------------------
# files


@pytest.fixture
def wav44(tmp_path):
    """A 4 s music-like WAV at 44.1 kHz (float samples, so reading it back is exact)."""
    y = music_like(4.0, sr=44100, seed=3)
    path = tmp_path / "song.wav"
    sf.write(str(path), y, 44100, subtype="FLOAT")
    return path, y


def test_file_features_resample_then_embed_and_cache(wav44, tmp_path, monkeypatch):
    path, y = wav44
    store = FeatureCache(tmp_path / "cache")
    feats = file_features(path, MUSICNN_EMBEDDING, cache=store)
    y16 = soxr.resample(y, 44100, SR16, quality="HQ").astype(np.float32)
    ref = compute_features(y16, MUSICNN_EMBEDDING)
    assert feats.shape == ref.shape == (8, 250)
    np.testing.assert_allclose(feats, ref, rtol=0, atol=1e-4)
    assert len(list((tmp_path / "cache").glob("*/*.npy"))) == 1
    # the second call is a cache hit: nothing decoded or computed
    monkeypatch.setattr(audio_features, "compute_features", lambda *a, **k: pytest.fail("recomputed"))
    monkeypatch.setattr(audio_source, "load_audio", lambda *a, **k: pytest.fail("decoded again"))
    np.testing.assert_array_equal(file_features(path, MUSICNN_EMBEDDING, cache=store), feats)
    # the log-Mel of the same file is another entry
    assert store.key(path, MUSICNN_EMBEDDING) != store.key(path, FeatureConfig())


@pytest.fixture(scope="module")
def long_mp3(tmp_path_factory):
    """A 70 s stereo MP3 at 44.1 kHz: long enough for several 16 s blocks of the block road."""
    rng = np.random.default_rng(5)
    y = np.concatenate(
        [music_like(10.0, sr=44100, seed=s) * g for s, g in zip(range(7), rng.uniform(0.3, 1, 7))]
    )
    path = tmp_path_factory.mktemp("long") / "long.mp3"
    sf.write(str(path), np.stack([y, 0.5 * y[::-1]], 1), 44100, format="MP3")
    return path


@pytest.mark.parametrize("extras", [(), ("mode",)])
def test_long_musicnn_files_are_read_in_blocks_and_equal_the_whole(long_mp3, monkeypatch, extras):
    """Issue 26 (6): a long file went through MusiCNN whole (~70 MB per audio minute); beyond
    ``MUSICNN_LONG_FILE_S`` it is read twice in blocks (loudness, then the steps of each block with context)
    and gives the same features within float rounding -- here with 16 s blocks, so every block edge is tested."""
    from moodscope.audio.decode import decoding_progress, load_audio
    from moodscope.audio.features import musicnn_file_features

    config = FeatureConfig.for_kind("musicnn", extras=extras, loudness_lufs=-14.0)
    whole = compute_features(load_audio(long_mp3, sr=SR16), config)
    seen = []
    with decoding_progress(lambda done, total: seen.append((done, total))):
        blocks = musicnn_file_features(long_mp3, config, block_s=16.0, context_s=16.0)
    # the file is read twice, its progress bar moves once: never back, to the end
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == pytest.approx(seen[-1][1], rel=0.02)
    assert blocks.shape == whole.shape == (140, config.n_bins)
    np.testing.assert_allclose(blocks, whole, rtol=0, atol=2e-4)
    # file_features takes the block road beyond the limit (the whole road is never called) ...
    monkeypatch.setenv("MOODSCOPE_LONG_FILE_S", "30")
    monkeypatch.setattr(audio_source, "load_audio", lambda *a, **k: pytest.fail("read whole"))
    np.testing.assert_allclose(file_features(long_mp3, config, cache=False), whole, rtol=0, atol=2e-4)
    # ... and not below it
    assert audio_source.long_file_s("musicnn") == 30.0
    monkeypatch.delenv("MOODSCOPE_LONG_FILE_S")
    assert audio_source.long_file_s("musicnn") == audio_source.MUSICNN_LONG_FILE_S < audio_source.LONG_FILE_S


def test_a_part_of_a_track_must_start_on_a_frame():
    emb = MusicnnEmbedding(MUSICNN_EMBEDDING)
    with pytest.raises(ValueError, match="multiple of 256"):
        emb.steps_of(torch.zeros(16000 * 5), start=100, first=0, stop=2, n_total=16000 * 5)
    with pytest.raises(ValueError, match="beyond the part"):
        emb.steps_of(torch.zeros(16000 * 5), start=0, first=8, stop=10, n_total=16000 * 60)


def test_iter_file_features_gives_one_block(wav44):
    path, _ = wav44
    blocks = list(iter_file_features(path, MUSICNN_EMBEDDING, chunk_s=1.0))
    assert len(blocks) == 1
    np.testing.assert_array_equal(blocks[0], file_features(path, MUSICNN_EMBEDDING, cache=False))
    part = list(iter_file_features(path, MUSICNN_EMBEDDING, offset=1.0, duration=2.0))
    assert len(part) == 1 and part[0].shape == (4, 250)
    np.testing.assert_array_equal(
        part[0], file_features(path, MUSICNN_EMBEDDING, cache=False, offset=1.0, duration=2.0)
    )


def test_loudness_setting_makes_the_features_independent_of_the_playback_gain():
    """``loudness_lufs``: the track is brought to that integrated loudness before the network, so any gain
    from -30 to +10 dB (float samples, no clipping) gives the same embedding; without it the features move."""
    import numpy as np

    from moodscope.audio.features import compute_features
    from moodscope.config import FeatureConfig

    rng = np.random.default_rng(0)
    t = np.arange(16000 * 6) / 16000
    y = (0.1 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.5 * t))).astype(np.float32)
    y += (0.02 * rng.standard_normal(t.size)).astype(np.float32)
    cfg = FeatureConfig.for_kind("musicnn", extras=("mode",), loudness_lufs=-14.0)
    ref = compute_features(y, cfg)
    for db in (-30.0, -10.0, 10.0):
        got = compute_features(y * np.float32(10 ** (db / 20)), cfg)
        assert np.abs(got - ref).max() < 1e-3 * np.abs(ref).max(), db
    plain = FeatureConfig.for_kind("musicnn", extras=("mode",))
    assert (
        np.abs(compute_features(y * np.float32(10 ** (-30 / 20)), plain) - compute_features(y, plain)).max()
        > 1.0
    )
    # the setting is part of the cache key, and settings made before it keep their key
    assert "loudness_lufs" in cfg.key() and "loudness_lufs" not in plain.key()
    with pytest.raises(ValueError, match="only kind 'musicnn'"):
        FeatureConfig(loudness_lufs=-14.0)


@needs("ffmpeg")
def test_a_cache_hit_on_a_long_file_whose_header_overstates_its_length(tmp_path, monkeypatch):
    """Review of issue 27's one road: a constant-bitrate MP3 without a Xing frame decodes a little shorter than
    its header's estimate; the block road's second pass, on a cache hit (only the mode features are computed),
    took the header's step count and failed joining the cached rows to one row more of extras."""
    import subprocess

    mp3 = tmp_path / "noxing.mp3"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=330:duration=39.9",
         "-ar", "44100", "-b:a", "128k", "-write_xing", "0", str(mp3)],
        check=True,
    )  # fmt: skip
    monkeypatch.setenv("MOODSCOPE_LONG_FILE_S", "5")
    config = FeatureConfig.for_kind("musicnn", extras=("mode",), loudness_lufs=-14.0)
    store = FeatureCache(tmp_path / "cache")
    miss = file_features(mp3, config, cache=store)
    assert audio_source.Source.file(mp3, SR16).seconds() // 0.5 > miss.shape[0]  # the header says more
    hit = file_features(mp3, config, cache=store)
    np.testing.assert_allclose(hit, miss, rtol=0, atol=1e-6)


def test_a_block_road_left_half_read_leaves_no_progress_report_behind(tmp_path, monkeypatch):
    """Review of issue 27's one road: the block road once held its progress share (a context variable) across a
    ``yield``, so the consumer's context reported to the share while it held a block, and a road left half
    read put a stale report back when it was collected."""
    import gc

    from moodscope.audio import decode
    from moodscope.audio.features import features_of

    path = tmp_path / "long.wav"
    sf.write(str(path), music_like(40.0, sr=SR16, seed=1), SR16)
    monkeypatch.setenv("MOODSCOPE_LONG_FILE_S", "5")
    seen = []

    def outer(done, total):
        seen.append(done)

    with decode.decoding_progress(outer):
        road = features_of(audio_source.Source.file(path, SR16), MUSICNN_EMBEDDING, block_s=16, context_s=16)
        next(road)
        assert decode._progress.get() is outer  # not the road's share of it
    assert decode._progress.get() is None
    del road
    gc.collect()
    assert decode._progress.get() is None and seen
