"""The ONNX Runtime front end of MusiCNN (moodscope[onnx]) against eager PyTorch, and the choice between them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moodscope.audio.features import MusicnnEmbedding, compute_features
from moodscope.config import MUSICNN_EMBEDDING
from moodscope.errors import MissingToolError, UsageError
from moodscope.models import musicnn_onnx
from moodscope.models.musicnn import FreqMaxBlock, load_musicnn
from moodscope.models.musicnn_onnx import OnnxFrameFeatures, frontend_choice

needs_onnx = pytest.mark.skipif(
    not musicnn_onnx.onnx_available(), reason='onnxruntime/onnx not installed (pip install "moodscope[onnx]")'
)


def music_like(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.3 * t)) + 0.2 * np.sin(
        2 * np.pi * 1500 * t
    ) * (t % 2 < 1)
    return (y + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


@needs_onnx
def test_onnx_frame_features_equal_eager(tmp_path):
    net = load_musicnn("msd")
    mel = torch.from_numpy(np.random.default_rng(1).uniform(0, 3, (2, 700, 96)).astype(np.float32))
    onnx = OnnxFrameFeatures(net, cache_dir=tmp_path)
    with torch.inference_mode():
        ref = net.frame_features(mel)
    got = onnx(mel)
    assert got.shape == ref.shape == (2, 700, 753)
    # float32 rounding only: the 1e-4, relative to each channel's magnitude (up to ~100 in the mid
    # end; measured 1.5e-5)
    scale = ref.abs().amax(dim=(0, 1)).clamp(min=1.0)
    assert float(((got - ref).abs() / scale).max()) < 1e-4
    # what the valence-arousal models read: the embedding and tag logits of 3 s windows, within 1e-4
    starts = list(range(0, 700 - 187, 31))
    with torch.inference_mode():
        a, b = net.head_windows(ref, starts), net.head_windows(got, starts)
    for key in ("embedding", "logits"):
        np.testing.assert_allclose(b[key].numpy(), a[key].numpy(), rtol=0, atol=1e-4)
    # exported once, then loaded from the cache folder
    assert [p.name for p in tmp_path.iterdir()] == [onnx.path.name]
    assert OnnxFrameFeatures(net, cache_dir=tmp_path).path == onnx.path


@needs_onnx
def test_features_through_onnx_equal_torch(monkeypatch, tmp_path):
    monkeypatch.setenv("MOODSCOPE_CACHE", str(tmp_path))
    y = music_like(40.0)  # 2501 frames: more than one block of the front end
    monkeypatch.setenv("MOODSCOPE_FRONTEND", "torch")
    ref = MusicnnEmbedding(MUSICNN_EMBEDDING).eval()
    monkeypatch.setenv("MOODSCOPE_FRONTEND", "onnx")
    emb = MusicnnEmbedding(MUSICNN_EMBEDDING).eval()
    assert emb.front_end("cpu")[0] == "onnx"
    with torch.inference_mode():
        got = emb(torch.from_numpy(y))
        monkeypatch.setenv("MOODSCOPE_FRONTEND", "torch")
        want = ref(torch.from_numpy(y))
    assert got.shape == want.shape == (80, 250)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=1e-4)


def test_frontend_choice(monkeypatch):
    monkeypatch.delenv("MOODSCOPE_FRONTEND", raising=False)
    assert frontend_choice("cpu") == "torch"  # opt-in
    monkeypatch.setenv("MOODSCOPE_FRONTEND", "auto")
    assert frontend_choice("cpu") == ("onnx" if musicnn_onnx.onnx_available() else "torch")
    assert frontend_choice("meta") == "torch"  # ONNX Runtime only ever runs on the CPU here
    monkeypatch.setenv("MOODSCOPE_FRONTEND", "torch")
    assert frontend_choice("cpu") == "torch"
    monkeypatch.setenv("MOODSCOPE_FRONTEND", "tensorrt")
    with pytest.raises(UsageError, match="MOODSCOPE_FRONTEND='tensorrt'"):
        frontend_choice("cpu")
    monkeypatch.setenv("MOODSCOPE_FRONTEND", "onnx")
    monkeypatch.setattr(musicnn_onnx, "onnx_available", lambda: False)
    with pytest.raises(MissingToolError, match=r"moodscope\[onnx\]"):
        frontend_choice("cpu")
    monkeypatch.setenv("MOODSCOPE_FRONTEND", "auto")
    assert frontend_choice("cpu") == "torch"  # auto without the extra: PyTorch, no error


def test_sliced_front_end_equals_one_call(monkeypatch):
    """The CPU path computes each branch's convolution in time slices; the numbers are those of one call."""
    net = load_musicnn("msd")
    mel = torch.from_numpy(np.random.default_rng(2).uniform(0, 3, (1, 1500, 96)).astype(np.float32))
    patches = mel[:, :1496].reshape(8, 187, 96)
    with torch.inference_mode():
        monkeypatch.setattr(FreqMaxBlock, "CPU_SLICE", 40_000)  # time slices and batch slices
        sliced, sliced_patches = net.frame_features(mel), net.frame_features(patches)
        monkeypatch.setattr(FreqMaxBlock, "CPU_SLICE", 1 << 62)
        whole, whole_patches = net.frame_features(mel), net.frame_features(patches)
    # slices this small make oneDNN pick other kernels: float32 rounding differs (measured 2e-5 of each
    # channel's magnitude, as ONNX Runtime's; the default slice size gave exactly the same numbers)
    for a, b in ((sliced, whole), (sliced_patches, whole_patches)):
        assert a.shape == b.shape
        scale = b.abs().amax(dim=(0, 1)).clamp(min=1.0)
        assert float(((a - b).abs() / scale).max()) < 1e-4


def test_compute_features_unchanged_by_the_extractor_cache(monkeypatch):
    """compute_features keeps one extractor per config and device; its front end follows the environment."""
    monkeypatch.setenv("MOODSCOPE_FRONTEND", "torch")
    y = music_like(5.0, seed=3)
    a = compute_features(y, MUSICNN_EMBEDDING)
    assert a.shape == (10, 250) and np.isfinite(a).all()
