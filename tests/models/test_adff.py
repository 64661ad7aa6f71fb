"""ADFF model (Huang et al., Interspeech 2022): shapes, data processing, ablations, gradients, round trip."""

from __future__ import annotations

import math

import pytest
import torch

from moodscope.config import FeatureConfig
from moodscope.modelfile import load_model, save_model
from moodscope.models import MODELS, build
from moodscope.models.adff import ADFF, VGG16_LEVELS
from moodscope.models.blocks import SEBlock
from moodscope.tasks.static import STATIC_HEADS

W = 0.125  # CPU-sized variant: channels 8, 16, 32, 64, 64; LSTM 16 per direction
FRAMES_5S, FRAMES_20S = 500, 2000


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These are small tensors: one intra-op thread is as fast, and far faster on a loaded 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _x(batch: int, frames: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 1, frames, 128, generator=g) * 15 - 40  # (B, 1, frames, 128) dB-like


def test_registered_static():
    assert "adff" in MODELS
    m = build("adff", width=W)
    assert isinstance(m, ADFF) and m.output == "static" and m.model_name == "adff"
    assert m.model_args["seg_num"] == 6 and m.model_args["task"] == "multitask"


@pytest.mark.parametrize("seg_num", range(1, 17))
def test_every_seg_num_5s_and_20s(seg_num):
    torch.manual_seed(seg_num)
    m = build("adff", width=W, seg_num=seg_num).eval()
    with torch.no_grad():
        for frames in (FRAMES_5S, FRAMES_20S):
            x = _x(1, frames)
            stacked = m.split(m.norm(x))
            assert stacked.shape == (1, seg_num, frames // seg_num, 128)
            levels = m.levels(stacked)
            t = frames // seg_num
            for n, (s, (_, c)) in enumerate(zip(levels, VGG16_LEVELS)):
                assert s.shape == (1, round(c * W), t, 128 // 2**n)
                t = math.ceil(t / 2)
            y = m(x)
            assert y.shape == (1, 2) and torch.isfinite(y).all()


def test_small_input_pooling_ceil():
    """5 s with seg_num 16: 31 frames per channel -> T_N = 31, 16, 8, 4, 2 (ceil_mode pooling)."""
    m = build("adff", width=W, seg_num=16).eval()
    with torch.no_grad():
        levels = m.levels(m.split(m.norm(_x(1, FRAMES_5S))))
    assert [s.shape[2] for s in levels] == [31, 16, 8, 4, 2]
    assert [s.shape[3] for s in levels] == [128, 64, 32, 16, 8]


@pytest.mark.parametrize("task", list(STATIC_HEADS))
def test_task_heads(task):
    torch.manual_seed(0)
    m = build("adff", width=W, task=task).eval()
    n_out = {"valence": 1, "arousal": 1, "multitask": 2, "binary": 4, "quadrant": 4}[task]
    assert m.out.out_features == n_out
    with torch.no_grad():
        assert m(_x(3, FRAMES_5S)).shape == (3, n_out)
        assert m(_x(1, FRAMES_20S)).shape == (1, n_out)


def test_split_is_cut_and_stack_dropping_remainder():
    m = build("adff", width=W, seg_num=6)
    x = torch.arange(2 * 1 * 2003 * 128, dtype=torch.float32).reshape(2, 1, 2003, 128)
    s = m.split(x)
    assert s.shape == (2, 6, 333, 128)  # 2003 // 6 = 333; 5 frames dropped
    for k in range(6):
        assert torch.equal(s[:, k], x[:, 0, 333 * k : 333 * (k + 1)])


def test_remainder_frames_do_not_change_output():
    torch.manual_seed(1)
    m = build("adff", width=W, seg_num=6).eval()
    x = _x(2, 603)
    with torch.no_grad():
        assert torch.allclose(m(x), m(x[:, :, :600]), atol=1e-6)


def test_batch_equals_one_by_one():
    torch.manual_seed(2)
    m = build("adff", width=W, seg_num=4).eval()
    x = _x(3, 400, seed=3)
    with torch.no_grad():
        whole = m(x)
        single = torch.cat([m(x[i : i + 1]) for i in range(3)])
    assert torch.allclose(whole, single, atol=1e-5)


def test_bad_input_raises():
    m = build("adff", width=W, seg_num=16)
    with pytest.raises(ValueError, match="fewer than seg_num"):
        m(_x(1, 10))
    with pytest.raises(ValueError, match="shape"):
        m(torch.zeros(1, 2, 100, 128))
    with pytest.raises(ValueError, match="task"):
        build("adff", task="tempo")
    with pytest.raises(ValueError, match="seg_num"):
        build("adff", seg_num=0)


def test_se_block_matches_equations():
    torch.manual_seed(0)
    se = SEBlock(32, reduction=16, min_hidden=4)
    assert se.fc1.out_features == 4  # max(32 // 16, 4)
    x = torch.randn(2, 32, 5, 7)
    z = x.mean(dim=(2, 3))  # eq. 2
    a = torch.sigmoid(
        se.fc2.weight @ torch.relu(se.fc1.weight @ z.T + se.fc1.bias[:, None]) + se.fc2.bias[:, None]
    )
    assert torch.allclose(se(x), x * a.T[:, :, None, None], atol=1e-6)  # eq. 3-4


def _n(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_size_sflm_parameter_count():
    """VGG16's conv part has 14,714,688 parameters for 3 input channels; ADFF takes seg_num = 6 channels
    (+3 * 64 * 9 weights) and adds a BatchNorm (2 C) at the end of each level."""
    m = build("adff")  # paper size, construction only
    bn = 2 * sum(c for _, c in VGG16_LEVELS)
    assert _n(m.sflm) == 14_714_688 + 3 * 64 * 9 + bn
    se = sum(2 * c * (c // 16) + c // 16 + c for _, c in VGG16_LEVELS)  # fc1 + fc2 weights and biases
    assert sum(_n(t.se) for t in m.tflm) == se


def test_ablation_without_se_removes_exactly_se():
    full = build("adff", width=W)
    no_se = build("adff", width=W, use_se=False)
    se_params = sum(_n(t.se) for t in full.tflm)
    assert se_params > 0
    assert all(isinstance(t.se, torch.nn.Identity) for t in no_se.tflm)
    assert full.n_parameters() - no_se.n_parameters() == se_params


def test_ablation_without_tflm_has_no_se_or_lstm():
    full = build("adff", width=W)
    no_tflm = build("adff", width=W, use_tflm=False)
    kinds = {type(mod) for mod in no_tflm.modules()}
    assert torch.nn.LSTM not in kinds and SEBlock not in kinds
    assert not any("lstm" in name or ".se." in name for name, _ in no_tflm.named_parameters())
    assert _n(no_tflm.sflm) == _n(full.sflm)
    # the head now takes the pooled channels sum(C_N) instead of 5 x 2H
    assert no_tflm.head[0].in_features == sum(round(c * W) for _, c in VGG16_LEVELS)
    with torch.no_grad():
        assert no_tflm.eval()(_x(2, FRAMES_5S)).shape == (2, 2)


@pytest.mark.parametrize("task", list(STATIC_HEADS))
def test_backward_reaches_every_parameter(task):
    torch.manual_seed(0)
    m = build("adff", width=W, task=task, seg_num=6).train()
    y = m(_x(2, 300))
    y.square().mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "kw", [{"temporal_pool": "last"}, {"freq_bands": 1}, {"lstm_hidden": 8, "ff_size": 16}]
)
def test_variants(kw):
    m = build("adff", width=W, **kw).eval()
    with torch.no_grad():
        assert m(_x(2, FRAMES_5S)).shape == (2, 2)


def test_model_file_round_trip(tmp_path):
    torch.manual_seed(4)
    m = build("adff", width=W, task="quadrant", seg_num=5, freq_bands=2).eval()
    m.set_input_stats(torch.full((128,), -30.0), torch.full((128,), 12.0))
    x = _x(2, 700)
    path = save_model(tmp_path / "adff.safetensors", m, FeatureConfig())
    loaded = load_model(path).model
    assert loaded.model_args == m.model_args
    with torch.no_grad():
        assert torch.equal(m(x), loaded(x))
