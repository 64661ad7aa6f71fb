"""DAMFF model: shapes, switches, decomposition, normalisation, gradients, learning."""

from __future__ import annotations

import pytest
import torch

from moodscope.models import MODELS, build
from moodscope.models.blocks import (
    SCAM,
    AttentionFusion,
    ChannelAttention,
    ConvBNReLUPool,
    SEBlock,
    SpatialAttention,
)
from moodscope.models.damff import ARCHITECTURES, DAMFF, FUSION_MODES


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: on a shared 2-core machine two OpenMP threads fighting other processes
    make these small ops up to 10x slower; results are identical."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _db(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * 20.0 - 40.0  # plausible log-Mel dB values


def _small(**kw) -> DAMFF:
    torch.manual_seed(0)
    return build("damff", width=0.25, **kw)


def test_registered_and_args_recorded():
    assert "damff" in MODELS
    m = _small(arch="ts")
    assert isinstance(m, DAMFF) and m.output == "dynamic" and m.model_name == "damff"
    assert m.model_args["width"] == 0.25 and m.model_args["arch"] == "ts"
    assert m.model_args["fusion"] == "daff" and m.model_args["segment_frames"] == 50


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("fusion", FUSION_MODES)
def test_output_shape_every_switch(arch, fusion):
    m = _small(arch=arch, fusion=fusion).eval()
    with torch.no_grad():
        y = m(_db(1, 1, 100, 128))
    assert y.shape == (1, 2, 2)
    assert torch.isfinite(y).all()


def _expected_params(width: float) -> int:
    """Parameter count of the default DAMFF written out layer by layer (see damff.py docstring)."""
    c1, c2, c3 = (max(4, round(c * width)) for c in (16, 32, 64))
    conv = lambda cin, cout, kt, kf: cin * cout * kt * kf + 2 * cout  # noqa: E731  (conv w/o bias + BN)
    n = conv(1, c1, 3, 1) + conv(1, c1, 1, 5)  # layer 1: temporal 3x1, frequency 1x5
    n += conv(c1, c2, 3, 3) + conv(c1, c2, 5, 5)  # layer 2
    n += conv(2 * c2, c3, 3, 3) + conv(2 * c2, c3, 5, 5)  # layer 3
    cr, p, pr = c3 // 4, 12 * 16, 12 * 16 // 4
    n += c3 * cr + 2 * cr + cr * c3 + 2 * c3  # channel attention (eq. 1)
    n += p * pr + 2 * pr + pr * p + 2 * p  # spatial attention (eq. 2), 192 positions
    d, h = 128, 128
    n += c3 * 16 * d + d  # reduction Linear(c3 * 16 -> 128)
    n += 2 * (4 * h * (d + h) + 2 * 4 * h)  # BiLSTM, both directions
    n += 2 * h * 2 + 2  # output layer
    return n


def test_paper_size_model():
    torch.manual_seed(0)
    m = build("damff").eval()
    assert m.channels == (16, 32, 64)  # 64 channels at the fusion (§3.2.1)
    assert m.fused_size == (12, 16)
    assert m.n_parameters() == _expected_params(1.0)
    x = _db(1, 1, 3001, 128)
    with torch.no_grad():
        y = m(x)
        y3000 = m(x[:, :, :3000])
    assert y.shape == (1, 60, 2)
    torch.testing.assert_close(y, y3000, rtol=0, atol=0)  # the 3001st frame is dropped


def test_width_scales_channels_and_params():
    m = _small()
    assert m.channels == (4, 8, 16)
    assert m.n_parameters() == _expected_params(0.25)
    assert build("damff", width=0.01).channels == (4, 4, 4)  # minimum 4


def test_kernel_shapes_follow_arch():
    def kernels(m):
        return [tuple(getattr(m, f"conv{i}{b}").conv.kernel_size) for i in (1, 2, 3) for b in "ab"]

    assert kernels(_small(arch="hybrid")) == [(3, 1), (1, 5), (3, 3), (5, 5), (3, 3), (5, 5)]
    assert all(1 in k for k in kernels(_small(arch="tf")))  # no square filter anywhere
    assert all(k[0] == k[1] for k in kernels(_small(arch="square")))
    assert kernels(_small(arch="ts"))[:2] == [(3, 1), (5, 1)]  # temporal = along time (axis 2)
    assert kernels(_small(arch="fs"))[:2] == [(1, 3), (1, 5)]


def test_ablations_remove_modules():
    daff = _small()
    c, p = 16, 12 * 16
    ca = c * (c // 4) + 2 * (c // 4) + (c // 4) * c + 2 * c
    sa = p * (p // 4) + 2 * (p // 4) + (p // 4) * p + 2 * p
    assert daff.n_parameters() - _small(fusion="no_channel").n_parameters() == ca
    assert daff.n_parameters() - _small(fusion="no_spatial").n_parameters() == sa
    assert daff.n_parameters() - _small(fusion="sum").n_parameters() == ca + sa
    assert _small(fusion="no_fusion").n_parameters() == daff.n_parameters()
    assert _small(fusion="no_channel").fusion.scam.channel is None
    assert _small(fusion="no_spatial").fusion.scam.spatial is None
    assert _small(fusion="sum").fusion.scam is None


@pytest.mark.parametrize("channels_last", [False, True])
def test_conv_block_eval_path_equals_unfused(channels_last):
    torch.manual_seed(4)
    blk = ConvBNReLUPool(3, 6, (3, 5), pool=2, channels_last_eval=channels_last)
    with torch.no_grad():  # non-trivial running statistics, some negative BN scales
        blk.bn.running_mean.normal_()
        blk.bn.running_var.uniform_(0.2, 3.0)
        blk.bn.weight.normal_()
        blk.bn.bias.normal_()
    blk.eval()
    x = torch.randn(4, 3, 11, 20)
    with torch.no_grad():
        expect = blk.pool(torch.relu(blk.bn(blk.conv(x))))
        got = blk(x)
    assert got.shape == (4, 6, 5, 10)
    torch.testing.assert_close(got, expect, rtol=1e-5, atol=1e-5)
    assert got.is_contiguous(memory_format=torch.channels_last) == channels_last


def test_fusion_formulas():
    torch.manual_seed(1)
    a, b = torch.randn(3, 8, 4, 5), torch.randn(3, 8, 4, 5)
    fuse = AttentionFusion(8, 20, mode="daff").eval()
    w = fuse.scam(a + b)
    assert w.shape == (3, 8, 4, 5) and (w > 0).all() and (w < 1).all()
    torch.testing.assert_close(fuse(a, b), w * a + (1 - w) * b)  # eq. (4)
    nf = AttentionFusion(8, 20, mode="no_fusion").eval()
    nf.load_state_dict(fuse.state_dict())
    torch.testing.assert_close(nf(a, b), w * (a + b))
    torch.testing.assert_close(AttentionFusion(8, 20, mode="sum")(a, b), a + b)
    # eq. (3): sigmoid of the broadcast sum of the two logit maps
    scam = fuse.scam
    expect = torch.sigmoid(scam.channel(a + b) + scam.spatial(a + b))
    torch.testing.assert_close(w, expect)
    assert scam.channel(a + b).shape == (3, 8, 1, 1) and scam.spatial(a + b).shape == (3, 1, 4, 5)


def test_spatial_attention_mixes_positions_from_channel_means():
    torch.manual_seed(2)
    sa = SpatialAttention(20).eval()
    x = torch.randn(2, 8, 4, 5)
    # only the channel mean at each position matters (Pool1d along the channel axis)
    noise = torch.randn(2, 8, 4, 5)
    x2 = x + noise - noise.mean(1, keepdim=True)  # same channel mean at every position
    perm = x[:, torch.randperm(8)]
    torch.testing.assert_close(sa(x), sa(perm))
    torch.testing.assert_close(sa(x), sa(x2))
    assert not torch.allclose(sa(x), sa(x + 1.0))
    with pytest.raises(ValueError, match="20 positions"):
        sa(torch.randn(2, 8, 5, 5))
    assert ChannelAttention(8)(torch.randn(2, 8, 4, 5)).shape == (2, 8, 1, 1)
    with pytest.raises(ValueError):
        SCAM(8, 20, channel=False, spatial=False)


def test_se_block():
    torch.manual_seed(3)
    se = SEBlock(32, reduction=8)
    x = torch.randn(2, 32, 6, 7)
    w = se.weights(x)
    assert w.shape == (2, 32) and (w > 0).all() and (w < 1).all()
    torch.testing.assert_close(se(x), x * w[:, :, None, None])
    seq = torch.randn(2, 32, 9)
    torch.testing.assert_close(se(seq), seq * se.weights(seq)[:, :, None])


def test_forward_is_sequence_head_of_embeddings():
    m = _small().eval()
    x = _db(2, 1, 300, 128)
    with torch.no_grad():
        emb = m.embed_segments(m.split_segments(x))
        assert emb.shape == (12, 128)
        torch.testing.assert_close(m(x), m.sequence_head(emb.view(2, 6, -1)))
        # segment i of window b is row b * n_seg + i: embedding a single segment alone gives the same row
        one = m.embed_segments(x[1:2, :, 150:200])
    torch.testing.assert_close(one[0], emb[6 + 3], rtol=1e-5, atol=1e-6)


def test_input_norm_is_applied():
    """A model with stats (mu, sd) on x' == the same weights with default stats on x, x' = affine(x)."""
    m = _small().eval()
    mu, sd = torch.linspace(-60, -20, 128), torch.linspace(5, 30, 128)
    x = _db(1, 1, 150, 128)
    x_affine = (x + 40.0) / 20.0 * sd + mu  # default InputNorm is mean -40 dB, std 20 dB
    with torch.no_grad():
        y_default = m(x)
        y_default_affine = m(x_affine)
        m.set_input_stats(mu, sd)
        y_stats_affine = m(x_affine)
    torch.testing.assert_close(y_stats_affine, y_default, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(y_stats_affine, y_default_affine, atol=1e-3)
    torch.testing.assert_close(m.norm.mean, mu)


def test_eval_deterministic_and_batch_independent():
    m = _small().eval()
    x = _db(3, 1, 250, 128)
    with torch.no_grad():
        y1, y2 = m(x), m(x)
        one_by_one = torch.cat([m(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    torch.testing.assert_close(y1, one_by_one, rtol=1e-5, atol=1e-6)


def test_gradients_reach_every_parameter():
    m = _small(dropout=0.0).train()
    y = m(_db(2, 1, 150, 128))
    (y**2).sum().backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing


def test_bad_input_raises():
    m = _small().eval()
    with pytest.raises(ValueError, match="128"):
        m(_db(1, 1, 100, 64))
    with pytest.raises(ValueError, match="at least 50 frames"):
        m(_db(1, 1, 49, 128))
    with pytest.raises(ValueError, match="arch"):
        build("damff", arch="triangle")
    with pytest.raises(ValueError, match="fusion"):
        build("damff", fusion="concat")
    with pytest.raises(ValueError, match="embed_segments expects"):
        m.embed_segments(_db(2, 1, 40, 128))


def test_small_model_overfits_tiny_batch():
    torch.manual_seed(0)
    m = build("damff", width=0.25, dropout=0.0).train()
    x = _db(4, 1, 300, 128, seed=5)  # 4 clips of 6 segments
    g = torch.Generator().manual_seed(6)
    # a smooth V-A curve per clip (dynamic labels change slowly)
    base = torch.rand(4, 1, 2, generator=g) * 1.6 - 0.8
    slope = torch.rand(4, 1, 2, generator=g) * 0.2 - 0.1
    target = base + slope * torch.arange(6.0)[None, :, None]
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(m(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.1 * losses[0], losses
