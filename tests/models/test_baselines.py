"""DAMFF's Table 2 comparison models (crnn, bcrsn, dnn_raw, mcrnn): shapes, segment contract, gradients."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from moodscope.audio.features import LogMel
from moodscope.config import FeatureConfig
from moodscope.modelfile import load_model, save_model
from moodscope.models import MODELS, build

NAMES = ["crnn", "bcrsn", "dnn_raw", "mcrnn"]
SR = 16000  # waveform models' default rate
SMALL = {"width": 0.125}


@pytest.fixture(autouse=True)
def _one_thread():
    """These tiny models run faster on one thread (no contention on a shared 2-core machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _input(name: str, n_seg: float, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """Features of ``n_seg`` 0.5 s segments in the model's own layout (dB log-Mel or waveform)."""
    g = torch.Generator().manual_seed(seed)
    if getattr(MODELS.get(name), "feature_kind", "logmel") == "waveform":
        n = int(round(n_seg * SR // 2))
        return 0.1 * torch.randn(batch, 1, n, 1, generator=g)
    n = int(round(n_seg * 50))
    return -40.0 + 15.0 * torch.randn(batch, 1, n, 128, generator=g)


def _model(name: str, seed: int = 0, **kw):
    torch.manual_seed(seed)
    return build(name, **{**SMALL, **kw})


def test_registered_with_dynamic_output():
    for name in NAMES:
        assert name in MODELS
        assert MODELS.get(name).output == "dynamic"


def test_feature_kinds():
    assert getattr(MODELS.get("crnn"), "feature_kind", "logmel") == "logmel"
    assert getattr(MODELS.get("bcrsn"), "feature_kind", "logmel") == "logmel"
    for name in ("dnn_raw", "mcrnn"):
        cls = MODELS.get(name)
        assert cls.feature_kind == "waveform" and cls.default_sr == SR
        m = _model(name)
        fc = FeatureConfig(kind="waveform", sr=cls.default_sr)
        assert m.segment_frames == fc.frames_per_segment == 8000
        assert m.n_mels == fc.n_bins == 1


@pytest.mark.parametrize("name", NAMES)
def test_output_shape_drops_partial_segment(name):
    m = _model(name).eval()
    x = _input(name, 4.3)  # 4 whole segments and a partial one
    with torch.no_grad():
        y = m(x)
    assert y.shape == (2, 4, 2)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
def test_30s_window_gives_60_segments(name):
    m = _model(name, width=0.0625).eval()
    with torch.no_grad():
        y = m(_input(name, 60, batch=1))
    assert y.shape == (1, 60, 2)


@pytest.mark.parametrize("name", NAMES)
def test_forward_equals_embed_then_head(name):
    """Embedding each segment on its own and running the head equals the full forward (reuse contract)."""
    m = _model(name).eval()
    x = _input(name, 5)
    L = m.segment_frames
    with torch.no_grad():
        full = m(x)
        segs = torch.cat([x[b : b + 1, :, i * L : (i + 1) * L] for b in range(2) for i in range(5)])
        emb = torch.cat([m.embed_segments(s[None]) for s in segs])  # one segment at a time
        assert emb.shape == (10, m.embed_dim)
        via = m.sequence_head(emb.reshape(2, 5, -1))
    torch.testing.assert_close(via, full, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_batch_equals_one_by_one(name):
    m = _model(name).eval()
    x = _input(name, 3, batch=3, seed=1)
    with torch.no_grad():
        batched = m(x)
        single = torch.cat([m(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name):
    m = _model(name).train()
    y = m(_input(name, 3))
    loss = y.square().mean() + (m.auxiliary_loss() if hasattr(m, "auxiliary_loss") else 0.0)
    loss.backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", NAMES)
def test_rejects_bad_input(name):
    m = _model(name)
    x = _input(name, 2)
    with pytest.raises(ValueError, match="expected input"):
        m(x[:, :, :, :0] if x.shape[-1] == 1 else x[..., :64])
    with pytest.raises(ValueError, match="fewer than one"):
        m(x[:, :, : m.segment_frames - 1])
    with pytest.raises(ValueError, match="embed_segments expects"):
        m.embed_segments(x)


@pytest.mark.parametrize("name", NAMES)
def test_width_scales_parameters(name):
    assert _model(name, width=0.25).n_parameters() < _model(name, width=0.5).n_parameters()


def test_crnn_branches_are_separate():
    """Valence comes only from the valence GRU branch, arousal only from the arousal branch."""
    m = _model("crnn").eval()
    x = _input("crnn", 3)
    with torch.no_grad():
        before = m(x)
        for p in m.rnn["arousal"].parameters():
            p.add_(0.5)
        after = m(x)
    torch.testing.assert_close(after[..., 0], before[..., 0])
    assert not torch.allclose(after[..., 1], before[..., 1])


def test_bcrsn_auxiliary_loss_is_l1_of_asf():
    m = _model("bcrsn", l1=0.01)
    expected = 0.01 * m.asf.weight.detach().abs().sum()
    torch.testing.assert_close(m.auxiliary_loss().detach(), expected)
    assert float(_model("bcrsn", l1=0.0).auxiliary_loss().detach()) == 0.0


def test_logmel_matches_librosa():
    sr, n_fft, hop, n_mels = SR, 960, 160, 64
    t = np.arange(8000) / sr
    rng = np.random.default_rng(0)
    y = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    ref = librosa.power_to_db(
        librosa.feature.melspectrogram(
            y=y,
            sr=sr,
            n_fft=n_fft,
            hop_length=hop,
            n_mels=n_mels,
            center=True,
            pad_mode="constant",
            power=2.0,
        ),
        ref=1.0,
        amin=1e-10,
        top_db=None,
    ).T  # (frames, n_mels)
    cfg = FeatureConfig(sr=sr, n_fft=n_fft, hop_length=hop, n_mels=n_mels)
    ours = LogMel(cfg, dtype=torch.float32)(torch.from_numpy(y)[None])[0].numpy()
    assert ours.shape == ref.shape == (51, n_mels)
    np.testing.assert_allclose(ours, ref, atol=1e-2)


@pytest.mark.parametrize("name", ["bcrsn", "mcrnn"])
def test_model_file_round_trip(tmp_path, name):
    m = _model(name).eval()
    x = _input(name, 2)
    with torch.no_grad():
        m.norm.set_stats(m.norm.mean + 0.1, m.norm.std * 2)
        want = m(x)
    kind = getattr(type(m), "feature_kind", "logmel")
    fc = FeatureConfig(kind=kind, sr=SR) if kind == "waveform" else FeatureConfig()
    bundle = load_model(save_model(tmp_path / f"{name}.safetensors", m, fc))
    with torch.no_grad():
        got = bundle.model(x)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n_seg", [7, 3])  # longer and shorter than the window
def test_sliding_window_reuse_equals_naive(name, n_seg):
    """moodscope.inference's embedding reuse gives the naive per-window result for every baseline."""
    from moodscope.inference.sliding import sliding_predict

    m = _model(name).eval()
    feats = _input(name, n_seg, batch=1)[0, 0].numpy()  # (frames, n_mels) as stored in the cache
    kw = {"window_segments": 4, "hop_valence": 0.5, "hop_arousal": 1.0}
    reuse = sliding_predict(m, feats, mode="reuse", **kw)
    naive = sliding_predict(m, feats, mode="naive", **kw)
    assert reuse.shape == (n_seg, 2)
    np.testing.assert_allclose(reuse, naive, rtol=1e-4, atol=1e-5)
