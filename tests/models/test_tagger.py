"""CNN emotion tagger (Liu et al. 2017) and the tagging helpers (aggregation, per-tag thresholds)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from moodscope.config import FeatureConfig
from moodscope.modelfile import load_model, save_model
from moodscope.models import MODELS, build
from moodscope.tasks.tags import choose_thresholds


def _logmel(batch: int, frames: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return -40.0 + 15.0 * torch.randn(batch, 1, frames, 128, generator=g)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models train faster on one thread (no contention on the shared 2-core machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _tagger(seed: int = 0, **kw):
    torch.manual_seed(seed)
    return build("tagger", **{"width": 0.25, **kw})


# ---------------------------------------------------------------------------------------------- model
def test_registered_as_tagger():
    assert MODELS.get("tagger").output == "tags"
    assert build("tagger").model_args["n_tags"] == 18


@pytest.mark.parametrize("frames", [100, 300, 1600])  # 1 s, 3 s and 16 s (CAL500exp's range)
def test_any_length_gives_one_logit_per_tag(frames):
    m = _tagger().eval()
    with torch.no_grad():
        y = m(_logmel(2, frames))
    assert y.shape == (2, 18)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize(
    "kw",
    [
        {"pool": "avg"},
        {"global_pool": "mean", "freq_reduce": "mean"},
        {"freq_reduce": "max"},
        {"global_pool": "max"},
        {"n_conv_layers": 2, "fc_sizes": []},
        {"kernel_size": (3, 5), "pool_size": (2, 4), "n_conv_layers": 3},
        {"fc_sizes": [64, 32], "n_tags": 5, "dropout": 0.1},
    ],
)
def test_architecture_options(kw):
    m = _tagger(**kw).eval()
    with torch.no_grad():
        y = m(_logmel(2, 120))
    assert y.shape == (2, kw.get("n_tags", 18))


def test_batch_equals_one_by_one():
    m = _tagger().eval()
    x = _logmel(3, 200, seed=1)
    with torch.no_grad():
        torch.testing.assert_close(m(x), torch.cat([m(x[i : i + 1]) for i in range(3)]), rtol=1e-4, atol=1e-5)


def test_gradients_reach_every_parameter():
    m = _tagger().train()
    target = (torch.arange(18) % 2).float().expand(2, 18)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(m(_logmel(2, 100)), target)
    loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_width_scales_conv_channels():
    assert _tagger(width=0.25).n_parameters() < _tagger(width=0.5).n_parameters()


def test_rejects_bad_input_and_arguments():
    m = _tagger()
    with pytest.raises(ValueError, match="expected input"):
        m(torch.zeros(1, 1, 100, 64))
    with pytest.raises(ValueError, match="at least 16"):
        m(torch.zeros(1, 1, 8, 128))
    with pytest.raises(ValueError, match="pool"):
        build("tagger", pool="median")
    with pytest.raises(ValueError, match="global_pool"):
        build("tagger", global_pool="sum")
    with pytest.raises(ValueError, match="mel bands"):
        build("tagger", n_conv_layers=8)


def test_learns_separable_tags():
    """Tag 0 = energy in the low mel bands, tag 1 = energy in the high bands (independent): BCE learns it.

    Needs the frequency position of a pattern, which ``freq_reduce="flatten"`` (the default) keeps.
    """
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=(96, 2)).astype(np.float32)
    x = rng.normal(-50.0, 3.0, size=(96, 1, 32, 128)).astype(np.float32)
    x[y[:, 0] == 1, :, :, 8:24] += 20.0
    x[y[:, 1] == 1, :, :, 96:112] += 20.0
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    m = _tagger(n_tags=2, width=0.125, n_conv_layers=3, fc_sizes=[16], dropout=0.0)
    m.set_input_stats(x[:64].mean(dim=(0, 1, 2)), x[:64].std(dim=(0, 1, 2)))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    m.train()
    for _ in range(10):
        for b in range(0, 64, 16):
            opt.zero_grad()
            torch.nn.functional.binary_cross_entropy_with_logits(m(x[b : b + 16]), y[b : b + 16]).backward()
            opt.step()
    m.eval()
    with torch.no_grad():
        pred = torch.sigmoid(m(x[64:])) >= 0.5
    assert (pred == y[64:].bool()).float().mean() >= 0.95


def test_model_file_round_trip(tmp_path):
    m = _tagger(n_tags=4).eval()
    m.set_input_stats(torch.full((128,), -35.0), torch.full((128,), 12.0))
    x = _logmel(2, 150)
    with torch.no_grad():
        want = m(x)
    bundle = load_model(save_model(tmp_path / "tagger.safetensors", m, FeatureConfig()))
    with torch.no_grad():
        torch.testing.assert_close(bundle.model(x), want)


def _f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp = np.sum(y & pred)
    denom = 2 * tp + np.sum(~y & pred) + np.sum(y & ~pred)
    return 2 * tp / denom if denom else 0.0


def test_thresholds_hand_example():
    # tag 0: scores .9 .8 .7 .1 with labels 1 0 1 0 -> best cut keeps the top three (F1 = 0.8), threshold
    #        halfway between .7 and .1
    # tag 1: no positives -> default 0.5
    # tag 2: positives are the two highest -> cut after .6 (F1 = 1), threshold (0.6 + 0.3) / 2
    # tag 3: the only positive has the lowest score -> everything positive (F1 = 2/5), threshold .2 / 2
    y = np.array([[1, 0, 1, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
    p = np.array([[0.9, 0.3, 0.9, 0.5], [0.8, 0.2, 0.6, 0.4], [0.7, 0.1, 0.3, 0.3], [0.1, 0.4, 0.3, 0.2]])
    np.testing.assert_allclose(choose_thresholds(y, p), [0.4, 0.5, 0.45, 0.1])


def test_thresholds_tie_goes_to_fewer_positives():
    # labels 1 0 1 by score .9 .8 .7: top-1 gives F1 = 2/3, top-3 gives F1 = 4/5 ... make an exact tie:
    # labels 1 0 0 1 0 0 by score: k=1 -> 2/3; k=4 -> 4/6 = 2/3; both maximal -> the higher threshold
    y = np.array([[1], [0], [0], [1], [0], [0]])
    p = np.array([[0.9], [0.8], [0.7], [0.6], [0.5], [0.4]])
    assert _f1(y[:, 0].astype(bool), p[:, 0] >= 0.85) == pytest.approx(
        _f1(y[:, 0].astype(bool), p[:, 0] >= 0.55)
    )
    np.testing.assert_allclose(choose_thresholds(y, p), [0.85])


def test_thresholds_are_f1_optimal_by_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(25):
        n = int(rng.integers(2, 9))
        y = rng.integers(0, 2, size=(n, 3))
        p = np.round(rng.random((n, 3)), 1)  # coarse values -> many ties in the scores
        thr = choose_thresholds(y, p, default=0.5)
        for j in range(3):
            yj = y[:, j].astype(bool)
            if not yj.any():
                assert thr[j] == 0.5
                continue
            candidates = itertools.chain(np.unique(p[:, j]), [0.0, 1.01])
            best = max(_f1(yj, p[:, j] >= c) for c in candidates)
            assert _f1(yj, p[:, j] >= thr[j]) == pytest.approx(best)


def test_thresholds_validate_input():
    with pytest.raises(ValueError, match="differs"):
        choose_thresholds(np.zeros((3, 2)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="binary"):
        choose_thresholds(np.full((2, 1), 0.5), np.zeros((2, 1)))
