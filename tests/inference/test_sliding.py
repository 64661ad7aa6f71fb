"""Sliding-window inference (DAMFF §4.4.1): schedule, reuse == naive, padding, streaming, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moodscope.errors import AudioError
from moodscope.inference.sliding import (
    embed_stream,
    predict_from_blocks,
    resolve_hops,
    segment_embeddings,
    sliding_predict,
    window_plan,
)
from moodscope.models import build

SF = 50  # frames per 0.5 s segment


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: on a shared 2-core machine two OpenMP threads fighting other processes
    make these small ops up to 10x slower; results are identical."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build("damff", width=0.25, embed_dim=32, lstm_hidden=32)
    # non-default input statistics, so that padding with the norm mean is actually exercised
    m.set_input_stats(torch.linspace(-70, -30, 128), torch.linspace(8, 25, 128))
    return m.eval()


def _feats(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(-50.0, 15.0, size=(int(round(seconds * 100)), 128)).astype(np.float32)


@pytest.fixture(scope="module")
def song95():
    return _feats(95.0, seed=1)  # 9500 frames -> 190 segments


def _direct(model, feats: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(feats))[None, None])[0].numpy()


# ----------------------------------------------------------------------------------------- schedule
def test_window_plan_hand_computed():
    def triples(*a, **k):
        return [(p.start, p.keep_start, p.keep_stop) for p in window_plan(*a, **k)]

    assert triples(10, window_segments=6, hop_segments=3) == [(0, 0, 6), (3, 6, 9), (4, 9, 10)]
    assert triples(12, window_segments=6, hop_segments=3) == [(0, 0, 6), (3, 6, 9), (6, 9, 12)]
    assert triples(4, window_segments=6, hop_segments=1) == [(0, 0, 4)]  # shorter than a window
    assert triples(6, window_segments=6, hop_segments=5) == [(0, 0, 6)]
    assert triples(8, window_segments=6, hop_segments=1) == [(0, 0, 6), (1, 6, 7), (2, 7, 8)]
    # 95 s, T = 30 s, t = 3 s: windows at 0, 6, ..., 126 cover 186 segments; one more ends at 190
    plan = window_plan(190, window_segments=60, hop_segments=6)
    assert plan[-2].start == 126 and plan[-2].keep_stop == 186
    assert (plan[-1].start, plan[-1].keep_start, plan[-1].keep_stop) == (130, 186, 190)


@pytest.mark.parametrize("window", [1, 5, 60])
def test_window_plan_partitions_song(window):
    for n_seg in [1, 2, 5, 59, 60, 61, 64, 190, 1000]:
        for hop in sorted({1, 2, 3, 5, 6, window}):
            if hop > window:
                continue
            plans = window_plan(n_seg, window_segments=window, hop_segments=hop)
            stops = [0] + [p.keep_stop for p in plans]
            assert [p.keep_start for p in plans] == stops[:-1]  # contiguous, in order, exactly once
            assert stops[-1] == n_seg
            for p in plans:
                assert p.keep_start < p.keep_stop
                assert p.start >= 0 and p.start <= p.keep_start
                assert p.keep_stop <= p.start + window
                assert p.start + window <= max(n_seg, window)
                if p is not plans[0]:  # later windows supply (at most) their last hop segments
                    assert p.keep_stop == min(n_seg, p.start + window)
                    assert p.keep_stop - p.keep_start <= hop


def test_resolve_hops():
    assert resolve_hops() == {"valence": 0.5, "arousal": 0.5}
    assert resolve_hops(2.5) == {"valence": 2.5, "arousal": 2.5}
    assert resolve_hops({"arousal": 2.5}) == {"valence": 0.5, "arousal": 2.5}
    assert resolve_hops(1.0, hop_valence=0.5) == {"valence": 0.5, "arousal": 1.0}
    with pytest.raises(ValueError, match="keys"):
        resolve_hops({"dominance": 1.0})


# -------------------------------------------------------------------------------- reuse == naive
@pytest.fixture(scope="module")
def model32():
    """A 32-mel variant: the hop-0.5 naive runs recompute 131 windows, 4x cheaper with 32 bands."""
    torch.manual_seed(1)
    m = build("damff", width=0.25, embed_dim=32, lstm_hidden=32, n_mels=32)
    m.set_input_stats(torch.linspace(-70, -30, 32), torch.linspace(8, 25, 32))
    return m.eval()


@pytest.mark.parametrize(
    ("n_mels", "hops"),
    [
        (128, {"hop_s": 2.5}),
        (128, {"hop_s": 3.0}),
        (32, {"hop_valence": 3.0, "hop_arousal": 2.5}),
        (32, {"hop_s": 0.5}),
        (32, {"hop_valence": 0.5, "hop_arousal": 2.5}),  # the paper's MER1101 setting
    ],
)
def test_reuse_equals_naive(model, model32, song95, n_mels, hops):
    m, feats = (model, song95) if n_mels == 128 else (model32, np.ascontiguousarray(song95[:, ::4]))
    reuse = sliding_predict(m, feats, mode="reuse", **hops)
    naive = sliding_predict(m, feats, mode="naive", batch_size=240, **hops)
    assert reuse.shape == naive.shape == (190, 2) and reuse.dtype == np.float32
    np.testing.assert_allclose(reuse, naive, rtol=0, atol=1e-5)


def test_first_window_and_end_window_are_model_outputs(model, song95):
    curve = sliding_predict(model, song95, hop_s=3.0)
    np.testing.assert_allclose(curve[:60], _direct(model, song95[:3000]), atol=1e-5)
    # windows 0, 6, ..., 126 then one aligned to the end (start 130) supplies segments 186..189
    np.testing.assert_allclose(curve[186:], _direct(model, song95[130 * SF :])[56:], atol=1e-5)
    # the window at 60 supplies segments 114..119 (its last 6)
    np.testing.assert_allclose(curve[114:120], _direct(model, song95[60 * SF : 120 * SF])[54:], atol=1e-5)


def test_per_dimension_hops_use_their_own_schedule(model, song95):
    mixed = sliding_predict(model, song95, hop_valence=0.5, hop_arousal=2.5)
    v_only = sliding_predict(model, song95, hop_s=0.5)
    a_only = sliding_predict(model, song95, hop_s=2.5)
    np.testing.assert_array_equal(mixed[:, 0], v_only[:, 0])
    np.testing.assert_array_equal(mixed[:, 1], a_only[:, 1])
    assert not np.allclose(v_only[:, 1], a_only[:, 1], atol=1e-6)  # the hop matters


def test_exactly_one_window(model):
    feats = _feats(30.0, seed=2)
    direct = _direct(model, feats)
    for mode in ("reuse", "naive"):
        np.testing.assert_allclose(sliding_predict(model, feats, mode=mode, hop_s=2.5), direct, atol=1e-5)


def test_short_song_padded_with_norm_mean_and_trimmed(model):
    feats = _feats(10.0, seed=3)  # 20 segments
    padded = np.concatenate([feats, np.broadcast_to(model.norm.mean.numpy(), (2000, 128))])
    expect = _direct(model, padded)[:20]
    for mode in ("reuse", "naive"):
        out = sliding_predict(model, feats, mode=mode)
        assert out.shape == (20, 2)
        np.testing.assert_allclose(out, expect, atol=1e-5)
    # padding with silence instead would change the result (the BiLSTM sees the padding)
    silent = np.concatenate([feats, np.full((2000, 128), -100.0, np.float32)])
    assert not np.allclose(_direct(model, silent)[:20], expect, atol=1e-4)


def test_trailing_partial_segment_dropped(model, song95):
    longer = np.concatenate([song95, _feats(0.49, seed=4)])  # 9549 frames
    np.testing.assert_array_equal(sliding_predict(model, longer), sliding_predict(model, song95))


def test_inputs_tensor_float64_and_train_mode_restored(model, song95):
    ref = sliding_predict(model, song95, hop_s=2.5)
    np.testing.assert_allclose(sliding_predict(model, torch.from_numpy(song95), hop_s=2.5), ref, atol=1e-6)
    np.testing.assert_allclose(sliding_predict(model, song95.astype(np.float64), hop_s=2.5), ref, atol=1e-5)
    model.train()
    try:
        np.testing.assert_allclose(sliding_predict(model, song95, hop_s=2.5), ref, atol=1e-6)
        assert model.training
    finally:
        model.eval()


# --------------------------------------------------------------------------------------- streaming
def test_embed_stream_matches_whole_array(model, song95):
    whole = segment_embeddings(model, song95, batch_size=64)
    assert whole.shape == (190, 32)
    sizes = [1, 49, 777, 3, 2500, 6170]  # sums to 9500; blocks split segments anywhere
    edges = np.cumsum([0] + sizes)
    blocks = [song95[a:b] for a, b in zip(edges[:-1], edges[1:])]
    streamed = embed_stream(model, iter(blocks), batch_size=7)
    torch.testing.assert_close(streamed, whole, rtol=1e-5, atol=1e-6)
    curve = predict_from_blocks(model, iter(blocks), hop_valence=0.5, hop_arousal=2.5, batch_size=16)
    ref = sliding_predict(model, song95, hop_valence=0.5, hop_arousal=2.5)
    np.testing.assert_allclose(curve, ref, atol=1e-5)


# ------------------------------------------------------------------------------------------ errors
def test_errors(model, song95):
    with pytest.raises(AudioError, match="too short"):
        sliding_predict(model, song95[:49])
    with pytest.raises(AudioError, match="too short"):
        embed_stream(model, [song95[:20], song95[20:40]])
    for bad in (0.0, 0.7, -0.5, 30.5):
        with pytest.raises(ValueError, match="hop"):
            sliding_predict(model, song95, hop_arousal=bad)
    with pytest.raises(ValueError, match="shape"):
        sliding_predict(model, song95[:, :64])
    with pytest.raises(ValueError, match="mode"):
        sliding_predict(model, song95, mode="fast")
    nan = song95.copy()
    nan[5000, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sliding_predict(model, nan)
