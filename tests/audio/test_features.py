"""moodscope.audio.features and .cache: librosa agreement, shapes, batching, devices, the cache and chunked extraction."""

from __future__ import annotations

import dataclasses

import librosa
import numpy as np
import pytest
import torch

from moodscope.audio import cache as feature_cache
from moodscope.audio import features as audio_features
from moodscope.audio import mel
from moodscope.audio import source as audio_source
from moodscope.audio.cache import FeatureCache, extract_to_dir, file_features
from moodscope.audio.features import LogMel, compute_features, iter_file_features
from moodscope.config import FeatureConfig
from moodscope.errors import AudioError

SR = 44100
CFG = FeatureConfig()


def librosa_logmel(y: np.ndarray, c: FeatureConfig = CFG) -> np.ndarray:
    """The reference: librosa's melspectrogram + power_to_db, as (frames, n_mels)."""
    S = librosa.feature.melspectrogram(
        y=y,
        sr=c.sr,
        n_fft=c.n_fft,
        hop_length=c.hop_length,
        n_mels=c.n_mels,
        fmin=c.fmin,
        fmax=c.fmax,
        power=c.power,
        center=c.center,
    )
    return librosa.power_to_db(S, ref=1.0, amin=c.amin, top_db=c.top_db).T


def test_signal(duration: float = 3.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Tones + noise, a near-silent stretch (-100 dB noise) and a stretch of exact zeros."""
    rng = np.random.default_rng(seed)
    n = int(duration * sr)
    t = np.arange(n) / sr
    y = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3520 * t) + 0.05 * rng.standard_normal(n)
    third = n // 3
    y[third : 2 * third] = 1e-5 * rng.standard_normal(third)
    y[2 * third : 2 * third + sr // 4] = 0.0
    return y.astype(np.float32)


test_signal.__test__ = False  # a helper, not a test


def pure_tone(duration: float = 3.0, sr: int = SR) -> np.ndarray:
    """A loud noiseless tone: high mel bands hold only window leakage (the hardest bins for precision)."""
    return (0.9 * np.sin(2 * np.pi * 523.25 * np.arange(int(duration * sr)) / sr)).astype(np.float32)


def logmel_np(y: np.ndarray, c: FeatureConfig = CFG, **kwargs) -> np.ndarray:
    with torch.inference_mode():
        return LogMel(c, **kwargs)(torch.from_numpy(y)).numpy()


# ----------------------------------------------------------------------------------------------------
# agreement with librosa


@pytest.mark.parametrize("make", [test_signal, pure_tone], ids=["tones+noise+silence", "pure-tone"])
def test_equals_librosa_within_1e3_db(make):
    y = make()
    ours, ref = logmel_np(y), librosa_logmel(y)
    assert ours.shape == ref.shape == (1 + len(y) // 441, 128)
    assert ours.dtype == np.float32
    assert ref.min() < -95  # the test does reach the quiet bins
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-3)


@pytest.mark.parametrize(
    "cfg",
    [
        FeatureConfig(sr=22050, n_mels=64, n_fft=1024, hop_length=256, fmin=30.0, fmax=8000.0),
        FeatureConfig(top_db=80.0),
        FeatureConfig(center=False),
        FeatureConfig(power=1.0),
    ],
    ids=["other-settings", "top_db", "no-centre", "magnitude"],
)
def test_equals_librosa_for_other_settings(cfg):
    y = test_signal(1.5, sr=cfg.sr, seed=1)
    np.testing.assert_allclose(logmel_np(y, cfg), librosa_logmel(y, cfg), rtol=0, atol=1e-3)


def test_padding_is_zeros_not_reflection():
    """The first frame sees n_fft // 2 zeros then the signal (librosa's pad_mode='constant')."""
    y = test_signal(0.2, seed=2)
    first = logmel_np(y)[0]
    padded = np.concatenate([np.zeros(CFG.n_fft // 2, np.float32), y[: CFG.n_fft // 2]])
    win = np.asarray(librosa.filters.get_window("hann", CFG.n_fft, fftbins=True))
    power = np.abs(np.fft.rfft(padded.astype(np.float64) * win)) ** 2
    expected = 10 * np.log10(np.maximum(1e-10, mel.mel_filterbank(CFG).astype(np.float64) @ power))
    np.testing.assert_allclose(first, expected, atol=1e-4)


@pytest.mark.parametrize(("n", "frames"), [(1, 1), (440, 1), (441, 2), (SR, 101), (30 * SR, 3001)])
def test_frame_count(n, frames):
    assert compute_features(np.zeros(n, np.float32)).shape == (frames, 128)


def test_frames_align_with_the_time_grid():
    """Frame t is centred on t / 100 s: a click at 1.0 s peaks in frame 100."""
    y = np.zeros(2 * SR, np.float32)
    y[SR] = 1.0
    energy = compute_features(y).max(axis=1)
    assert int(np.argmax(energy)) in (100,) and energy[100] > energy[94] + 20


# ----------------------------------------------------------------------------------------------------
# module behaviour


def test_batch_equals_item_by_item():
    ys = np.stack([test_signal(1.0, seed=s) for s in range(3)])
    with torch.inference_mode():
        m = LogMel(CFG)
        batch = m(torch.from_numpy(ys))
        items = torch.stack([m(torch.from_numpy(y)) for y in ys])
    assert batch.shape == (3, 101, 128)
    torch.testing.assert_close(batch, items, rtol=0, atol=1e-5)


def test_leading_dimensions_are_kept():
    x = torch.from_numpy(test_signal(0.3)).repeat(2, 3, 1)
    with torch.inference_mode():
        out = LogMel(CFG)(x)
    assert out.shape == (2, 3, 1 + x.shape[-1] // 441, 128)
    torch.testing.assert_close(out[1, 2], out[0, 0])


def test_blockwise_stft_equals_one_block(monkeypatch):
    y = test_signal(2.0, seed=4)
    whole = logmel_np(y)
    monkeypatch.setattr(mel, "_BLOCK_ELEMENTS", 1324 * 7)  # 7 frames per block
    np.testing.assert_allclose(logmel_np(y), whole, rtol=0, atol=1e-6)


def test_float32_option_is_close_on_music_like_input():
    y = test_signal(1.0, seed=5)
    np.testing.assert_allclose(logmel_np(y, dtype=torch.float32), librosa_logmel(y), rtol=0, atol=1e-3)


def test_buffers_are_not_saved_and_settings_validated():
    m = LogMel(CFG)
    assert dict(m.named_buffers()).keys() == {"window", "mel_basis"}
    assert m.state_dict() == {}  # models embedding LogMel do not store the filterbank
    assert m.mel_basis.shape == (128, 1324) and m.window.dtype == torch.float64
    with pytest.raises(ValueError, match="kind='logmel'"):
        LogMel(FeatureConfig(kind="waveform"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_equals_cpu():
    ys = np.stack([test_signal(1.0, seed=s) for s in range(2)])
    with torch.inference_mode():
        cpu = LogMel(CFG)(torch.from_numpy(ys))
        gpu = LogMel(CFG).to("cuda")(torch.from_numpy(ys).to("cuda"))
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-3)
    np.testing.assert_allclose(compute_features(ys[0], device="cuda"), cpu[0].numpy(), rtol=0, atol=1e-3)


def test_compute_features_kinds():
    y = test_signal(0.5)
    X = compute_features(y)
    assert X.shape == (51, 128) and X.dtype == np.float32
    W = compute_features(y, FeatureConfig(kind="waveform"))
    assert W.shape == (len(y), 1) and W.dtype == np.float32
    np.testing.assert_array_equal(W[:, 0], y)
    for bad in (np.zeros((2, 100), np.float32), np.zeros(0, np.float32)):
        with pytest.raises(ValueError, match="non-empty mono waveform"):
            compute_features(bad)


# ----------------------------------------------------------------------------------------------------
# file features and the cache


@pytest.fixture
def song(write_audio):
    return write_audio("song.wav", test_signal(1.0, seed=7))


@pytest.fixture
def counted(monkeypatch):
    """Count feature computations and decodes done by file_features."""
    calls = {"compute": 0, "load": 0}
    compute, load = audio_features.compute_features, audio_source.load_audio

    def counting_compute(*args, **kwargs):
        calls["compute"] += 1
        return compute(*args, **kwargs)

    def counting_load(*args, **kwargs):
        calls["load"] += 1
        return load(*args, **kwargs)

    monkeypatch.setattr(audio_features, "compute_features", counting_compute)
    monkeypatch.setattr(audio_source, "load_audio", counting_load)
    return calls


def test_file_features_equal_compute_on_loaded_audio(song):
    X = file_features(song, cache=False)
    np.testing.assert_array_equal(X, compute_features(audio_source.load_audio(song)))
    part = file_features(song, cache=False, offset=0.25, duration=0.5)
    assert part.shape == (51, 128)


def test_cache_hit_does_not_recompute(song, tmp_path, counted):
    cache = FeatureCache(tmp_path / "cache")
    first = file_features(song, cache=cache)
    second = file_features(song, cache=cache)
    np.testing.assert_array_equal(first, second)
    assert counted == {"compute": 1, "load": 1}
    assert len(list((tmp_path / "cache").glob("*/*.npy"))) == 1


def test_default_cache_follows_env(song, tmp_path, monkeypatch, counted):
    monkeypatch.setenv("MOODSCOPE_CACHE", str(tmp_path / "envcache"))
    assert feature_cache.default_cache_dir() == tmp_path / "envcache" / "features"
    file_features(song)  # cache=None: the default cache
    file_features(song, cache=True)
    assert counted["compute"] == 1
    assert len(list((tmp_path / "envcache" / "features").glob("*/*.npy"))) == 1
    file_features(song, cache=False)
    assert counted["compute"] == 2
    monkeypatch.delenv("MOODSCOPE_CACHE")
    assert feature_cache.default_cache_dir().parts[-3:] == (".cache", "moodscope", "features")


def test_cache_key_depends_on_content_settings_and_region(write_audio, tmp_path):
    cache = FeatureCache(tmp_path / "c")
    a = write_audio("a.wav", test_signal(1.0, seed=1))
    copy = write_audio("other/name.wav", test_signal(1.0, seed=1))
    b = write_audio("b.wav", test_signal(1.0, seed=2))
    key = cache.key(a, CFG)
    assert cache.key(copy, CFG) == key  # content-addressed: the path does not matter
    assert cache.key(b, CFG) != key
    assert cache.key(a, FeatureConfig(n_mels=64)) != key
    assert cache.key(a, FeatureConfig(hop_length=220)) != key
    assert cache.key(a, FeatureConfig(kind="waveform")) != key
    assert cache.key(a, CFG, offset=0.5) != key
    assert cache.key(a, CFG, duration=0.5) != key
    assert cache.key(a, CFG, duration=1) == cache.key(a, CFG, duration=1.0)
    # editing the file in place changes the key
    write_audio("a.wav", test_signal(1.0, seed=3))
    assert FeatureCache(tmp_path / "c").key(a, CFG) != key


def test_cache_is_per_setting(song, tmp_path, counted):
    cache = FeatureCache(tmp_path / "c")
    X128 = file_features(song, CFG, cache=cache)
    X64 = file_features(song, FeatureConfig(n_mels=64), cache=cache)
    assert X128.shape == (101, 128) and X64.shape == (101, 64)
    assert counted["compute"] == 2


def _corrupt_truncate(p):
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _corrupt_garbage(p):
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())


def _corrupt_empty(p):
    p.write_bytes(b"")


def _wrong_shape(p):
    np.save(p, np.zeros((101, 64), np.float32))


def _wrong_dtype(p):
    np.save(p, np.zeros((101, 128), np.float64))


def _nan(p):
    a = np.load(p)
    a[3, 4] = np.nan
    np.save(p, a)


@pytest.mark.parametrize(
    "corrupt", [_corrupt_truncate, _corrupt_garbage, _corrupt_empty, _wrong_shape, _wrong_dtype, _nan]
)
def test_corrupted_entry_is_recomputed(song, tmp_path, counted, corrupt):
    cache = FeatureCache(tmp_path / "c")
    good = file_features(song, cache=cache)
    entry = cache.entry(cache.key(song, CFG))
    assert entry.is_file()
    corrupt(entry)
    assert cache.load(cache.key(song, CFG), CFG) is None
    assert not entry.exists()  # removed
    again = file_features(song, cache=cache)
    np.testing.assert_array_equal(again, good)
    assert counted["compute"] == 2
    np.testing.assert_array_equal(np.load(entry), good)  # rewritten, valid


def test_atomic_writes_leave_no_temp_files(song, tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path / "c")
    file_features(song, cache=cache)
    files = [p for p in (tmp_path / "c").rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].suffix == ".npy" and not files[0].name.startswith(".")

    # a failure in the middle of writing leaves neither an entry nor a temporary file
    def broken_save(f, arr, **kwargs):
        f.write(b"\x93NUMPY partial")
        raise OSError("disk full")

    other = FeatureCache(tmp_path / "c2")
    monkeypatch.setattr(feature_cache.np, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        other.save("ab" * 32, np.zeros((3, 128), np.float32))
    # file_features still returns the features, with a warning
    with pytest.warns(RuntimeWarning, match="features not cached .*disk full"):
        X = file_features(song, cache=other)
    assert X.shape == (101, 128)
    assert [p for p in other.root.rglob("*") if p.is_file()] == []


def test_bad_audio_raises_before_caching(write_audio, tmp_path):
    cache = FeatureCache(tmp_path / "c")
    p = write_audio("silent.wav", np.zeros(SR, np.float32))
    with pytest.raises(AudioError, match="silent"):
        file_features(p, cache=cache)
    with pytest.raises(AudioError, match="no such file"):
        file_features(tmp_path / "missing.wav", cache=cache)
    assert not (tmp_path / "c").exists() or not any(p.is_file() for p in (tmp_path / "c").rglob("*"))


# ----------------------------------------------------------------------------------------------------
# chunked extraction of long files


def long_signal(duration: float, sr: int, seed: int = 0) -> np.ndarray:
    """Chirps + noise with a stretch of digital silence, so chunk borders fall on varied content."""
    rng = np.random.default_rng(seed)
    n = int(duration * sr)
    t = np.arange(n) / sr
    y = 0.3 * np.sin(2 * np.pi * (300 + 20 * t) * t) + 0.03 * rng.standard_normal(n)
    y[int(0.4 * n) : int(0.45 * n)] = 0.0
    return y.astype(np.float32)


def test_chunked_equals_full_on_200_s_file(write_audio):
    path = write_audio("long.wav", long_signal(200.0, SR), subtype="PCM_16")
    full = file_features(path, cache=False)
    blocks = list(iter_file_features(path, chunk_s=30.0))
    assert len(blocks) == 7 and all(b.shape == (3000, 128) for b in blocks[:-1])
    chunked = np.concatenate(blocks)
    assert chunked.shape == full.shape == (20001, 128)
    np.testing.assert_allclose(chunked, full, rtol=0, atol=1e-3)


@pytest.mark.parametrize(
    ("name", "sr", "offset", "duration"),
    [
        ("r.flac", 48000, 0.0, None),
        ("r.flac", 48000, 1.234, 10.5),
        ("m.mp3", 44100, 0.0, None),
        ("m.mp3", 44100, 2.5, None),
        ("w.wav", SR, 3.3, 13.0),
    ],
)
def test_chunked_equals_full_resampled_mp3_and_regions(write_audio, name, sr, offset, duration):
    path = write_audio(name, long_signal(20.0, sr, seed=1), sr)
    full = file_features(path, cache=False, offset=offset, duration=duration)
    chunked = np.concatenate(list(iter_file_features(path, chunk_s=6.0, offset=offset, duration=duration)))
    assert chunked.shape == full.shape
    np.testing.assert_allclose(chunked, full, rtol=0, atol=1e-3)


def test_chunked_waveform_kind(write_audio):
    cfg = FeatureConfig(kind="waveform", sr=22050)
    path = write_audio("w.flac", long_signal(10.0, 48000), 48000)
    full = file_features(path, cfg, cache=False)
    chunked = np.concatenate(list(iter_file_features(path, cfg, chunk_s=3.0)))
    assert full.shape == chunked.shape == (220500, 1)
    np.testing.assert_allclose(chunked, full, rtol=0, atol=1e-6)


def test_chunked_reports_silence_and_short_files(write_audio):
    path = write_audio("quiet.wav", np.zeros(5 * SR, np.float32))
    it = iter_file_features(path, chunk_s=2.0)
    assert next(it).shape == (200, 128)
    with pytest.raises(AudioError, match=r"quiet\.wav: silent"):
        list(it)
    assert sum(len(b) for b in iter_file_features(path, chunk_s=2.0, check_silent=False)) == 501
    short = write_audio("short.wav", np.ones(10, np.float32))
    with pytest.raises(AudioError, match="too short"):
        next(iter_file_features(short))
    with pytest.raises(AudioError, match=r"quiet\.wav: offset 6 s is at or past the end \(5 s\)"):
        next(iter_file_features(path, offset=6.0))


def test_long_files_go_through_chunks(write_audio, monkeypatch):
    path = write_audio("l.wav", long_signal(12.0, SR))
    whole = file_features(path, cache=False)
    monkeypatch.setattr(audio_source, "LONG_FILE_S", 5.0)
    monkeypatch.setattr(audio_source, "load_audio", lambda *a, **k: pytest.fail("decoded the whole file"))
    np.testing.assert_allclose(file_features(path, cache=False), whole, rtol=0, atol=1e-3)
    cfg = dataclasses.replace(CFG, top_db=30.0)
    clipped = file_features(path, cfg, cache=False)
    assert clipped.min() == pytest.approx(whole.max() - 30.0, abs=1e-3)


# ----------------------------------------------------------------------------------------------------
# extract_to_dir


def test_extract_to_dir_formats_and_failures(write_audio, tmp_path):
    good = [
        write_audio("in/a.wav", test_signal(1.0, seed=1)),
        write_audio("in/b.flac", test_signal(1.0, seed=2)),
        write_audio("in/c.ogg", test_signal(1.0, seed=3)),
        write_audio("in/d.mp3", test_signal(1.0, seed=4)),
    ]
    out = tmp_path / "out"
    written, failures = extract_to_dir(good, out, cache=False)
    assert failures == []
    assert written == [out / f"{s}.npy" for s in "abcd"]
    for p, src in zip(written, good):
        X = np.load(p)
        assert X.dtype == np.float32 and X.shape == (101, 128)
        np.testing.assert_array_equal(X, file_features(src, cache=False))
    assert sorted(p.name for p in out.iterdir()) == ["a.npy", "b.npy", "c.npy", "d.npy"]  # no temp files

    bad = tmp_path / "in" / "broken.mp3"
    bad.write_text("not audio")
    silent = write_audio("in/silent.wav", np.zeros(SR, np.float32))
    out2 = tmp_path / "out2"
    result = extract_to_dir([bad, good[0], silent, tmp_path / "gone.wav", good[1]], out2, cache=False)
    assert result.written == [out2 / "a.npy", out2 / "b.npy"]
    assert sorted(p.name for p in out2.iterdir()) == ["a.npy", "b.npy"]
    assert [p for p, _ in result.failures] == [bad, silent, tmp_path / "gone.wav"]
    causes = [c for _, c in result.failures]
    assert causes[0].startswith("not a readable audio file (")
    assert causes[1:] == ["silent: every sample is zero", "no such file"]


def test_extract_to_dir_rejects_clashing_names(write_audio, tmp_path):
    a = write_audio("x/song.wav", test_signal(0.5))
    b = write_audio("y/song.flac", test_signal(0.5))
    with pytest.raises(ValueError, match="would both write"):
        extract_to_dir([a, b], tmp_path / "out", cache=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "sr, n_fft, n_mels, fmin, fmax",
    [
        (44100, 2646, 128, 0.0, None),
        (16000, 512, 64, 0.0, None),
        (22050, 2048, 96, 30.0, 8000.0),
        (8000, 256, 40, 0, None),
    ],
)
def test_mel_basis_is_librosas_slaney_filterbank(sr, n_fft, n_mels, fmin, fmax):
    ours = mel.mel_basis(sr, n_fft, n_mels, fmin, fmax)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    assert ours.dtype == np.float32 and ours.shape == ref.shape and not ours.flags.writeable
    np.testing.assert_array_equal(ours, ref)  # bit for bit: cached features and trained models stay valid
    f = np.array([0.0, 440.0, 999.0, 1000.0, 1001.0, 4000.0, sr / 2])
    np.testing.assert_allclose(mel.hz_to_mel(f), librosa.hz_to_mel(f), rtol=1e-12)
    np.testing.assert_allclose(mel.mel_to_hz(mel.hz_to_mel(f)), f, rtol=1e-12, atol=1e-9)


def test_predicting_imports_neither_librosa_nor_training_stack(tmp_path):
    """``moodscope predict`` start-up: librosa (3 s on its first filterbank), scikit-learn and Lightning stay out."""
    import subprocess
    import sys

    code = (
        "import sys, io, numpy as np, soundfile as sf\n"
        f"p = {str(tmp_path / 'a.wav')!r}\n"
        "sf.write(p, (0.1 * np.random.default_rng(0).standard_normal(44100 * 3)).astype('float32'), 44100)\n"
        "from moodscope.library.batch import predict_paths\n"
        "predict_paths([p], progress=False, stream=io.StringIO())\n"
        "print(sorted(m for m in ('librosa', 'sklearn', 'lightning', 'moodscope.training') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
