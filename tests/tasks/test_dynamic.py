"""The dynamic task: masked losses, training windows, and training-time segment reuse (batching, determinism)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moodscope.config import FeatureConfig
from moodscope.metrics import ccc
from moodscope.models import build
from moodscope.tasks.base import (
    Item,
    _masked_ccc_loss,
    _masked_movement_ccc_loss,
    _masked_rmse_loss,
    crop_frames,
)
from moodscope.tasks.dynamic import DynamicTask


def test_masked_ccc_loss_equals_one_minus_ccc_and_ignores_masked_steps():
    rng = np.random.default_rng(0)
    p, t = rng.normal(size=(3, 40)), rng.normal(size=(3, 40))
    full = _masked_ccc_loss(torch.tensor(p), torch.tensor(t), torch.ones(3, 40), eps=0.0)
    assert float(full) == pytest.approx(np.mean([1 - ccc(t[i], p[i]) for i in range(3)]), abs=1e-9)
    mask = torch.ones(3, 40)
    mask[:, 30:] = 0
    p2 = p.copy()
    p2[:, 30:] = 1e3  # garbage where masked
    part = _masked_ccc_loss(torch.tensor(p2), torch.tensor(t), mask, eps=0.0)
    assert float(part) == pytest.approx(np.mean([1 - ccc(t[i, :30], p[i, :30]) for i in range(3)]), abs=1e-9)
    r = _masked_rmse_loss(torch.tensor(p2), torch.tensor(t), mask, eps=0.0)
    assert float(r) == pytest.approx(np.sqrt(np.mean((p[:, :30] - t[:, :30]) ** 2)), abs=1e-9)


def test_movement_ccc_loss_ignores_the_level_and_wants_the_listeners_amplitude():
    rng = np.random.default_rng(1)
    t = 0.06 * rng.normal(size=(4, 40))
    p = t + 0.03 * rng.normal(size=(4, 40))
    mask = torch.ones(4, 40)
    mask[:, 35:] = 0
    loss = float(_masked_movement_ccc_loss(torch.tensor(p), torch.tensor(t), mask, eps=0.0))
    centred = [(x[i, :35] - x[i, :35].mean()) for x in (t, p) for i in range(4)]
    expected = np.mean([1 - ccc(centred[i], centred[4 + i]) for i in range(4)])
    assert loss == pytest.approx(expected, abs=1e-9)
    # a level off by 0.5 changes nothing (the full CCC loss would be near 1)
    shifted = float(_masked_movement_ccc_loss(torch.tensor(p + 0.5), torch.tensor(t), mask, eps=0.0))
    assert shifted == pytest.approx(loss, abs=1e-9)
    assert float(_masked_ccc_loss(torch.tensor(p + 0.5), torch.tensor(t), mask, eps=0.0)) > 0.9
    # the best amplitude is the target's own: scaling the movement up or down only costs
    scales = [0.25, 0.5, 1.0, 2.0, 4.0]
    losses = [
        float(_masked_movement_ccc_loss(torch.tensor(s * t), torch.tensor(t), mask, eps=0.0)) for s in scales
    ]
    assert losses[2] == pytest.approx(0.0, abs=1e-9) and min(losses) == losses[2]


def test_dynamic_windows_cover_the_labelled_span():
    task = DynamicTask(FeatureConfig(), window_s=30.0, train_hop_s=5.0)
    dyn = np.full((90, 2), np.nan, np.float32)  # 45 s of segments, labelled from 15 s (DEAM-like)
    dyn[30:] = 0.1
    item = Item("a", np.zeros((4500, 128), np.float32), dynamic=dyn)
    assert task.window_starts(item) == [30]  # exactly one 30 s window: [15 s, 45 s)
    dyn[:] = 0.1
    assert task.window_starts(item) == [0, 10, 20, 30]  # every 5 s, the last aligned to the end
    short = Item("b", np.zeros((1000, 128), np.float32), dynamic=np.zeros((20, 2), np.float32))
    m = build("damff", width=0.0625, embed_dim=8, lstm_hidden=4)
    ds = task.examples([short], m)
    x, y, mask = ds[0]
    assert x.shape == (1, 3000, 128) and y.shape == (60, 2)
    assert mask[:20].all() and not mask[20:].any()  # padded segments carry no label
    np.testing.assert_allclose(x[0, 1000:, 0].numpy(), m.norm.mean[0].item())  # padding = normalisation mean


def test_crop_frames_pads_both_sides():
    f = np.arange(10, dtype=np.float32)[:, None]
    np.testing.assert_array_equal(crop_frames(f, -2, 5, -1.0)[:, 0], [-1, -1, 0, 1, 2])
    np.testing.assert_array_equal(crop_frames(f, 8, 4, -1.0)[:, 0], [8, 9, -1, -1])


def _reuse_items():
    rng = np.random.default_rng(0)
    return [
        Item(
            str(i),
            rng.normal(-40, 10, (n * 50, 128)).astype(np.float32),
            dynamic=rng.uniform(-1, 1, (n, 2)).astype(np.float32),
        )
        for i, n in enumerate([90, 70, 50, 100])  # 45 s, 35 s, 25 s (shorter than a window: padded), 50 s
    ]


@pytest.mark.parametrize(
    "name,args", [("damff", {"width": 0.0625, "embed_dim": 8, "lstm_hidden": 4}), ("crnn", {"width": 0.125})]
)
def test_training_segment_reuse_gives_the_window_batches_losses(name, args):
    """``train_reuse`` embeds each segment once per batch; with BatchNorm in eval mode and no dropout the
    losses equal those of plain window batches over the same windows, with far fewer segments embedded."""
    torch.manual_seed(0)
    m = build(name, **args).eval()
    items = _reuse_items()
    plain = DynamicTask(FeatureConfig(), train_hop_s=2.5)
    reuse = DynamicTask(FeatureConfig(), train_hop_s=2.5, train_reuse=True)
    ex_plain, ex_reuse = plain.examples(items, m), reuse.examples(items, m)
    n = len(ex_plain)
    (x, y, mask) = next(iter(plain.train_loader(ex_plain, batch_size=n + 1, seed=0)))  # one batch: all
    (batch,) = list(reuse.train_loader(ex_reuse, batch_size=n + 1, seed=0))
    assert len(batch["index"]) == n == 7 + 3 + 1 + 9
    assert (
        len(batch["segments"]) == 90 + 70 + 60 + 100 < n * 60 / 3
    )  # each segment once (the 25 s clip padded)
    with torch.no_grad():
        lp, n_plain = plain.training_losses(m, (x, y, mask))
        lr, n_reuse = reuse.training_losses(m, batch)
    assert n_plain == n_reuse == n
    # the loss is a mean over windows, so the window order of the two batches does not matter
    for k in ("loss_valence", "loss_arousal", "loss"):
        assert float(lr[k]) == pytest.approx(float(lp[k]), rel=1e-5), k


def test_training_segment_reuse_batches_windows_by_track_and_covers_each_once_per_epoch():
    torch.manual_seed(0)
    m = build("damff", width=0.0625, embed_dim=8, lstm_hidden=4)
    task = DynamicTask(FeatureConfig(), train_hop_s=2.5, train_reuse=True)
    ex = task.examples(_reuse_items(), m)
    loader = task.train_loader(ex, batch_size=8, seed=3)
    sampler = loader.sampler
    epochs = [list(sampler), list(sampler)]
    assert len(loader) == len(ex) // 8 == 2
    for rows in epochs:
        flat = [j for b in rows for j in b]
        assert len(flat) == len(set(flat)) == 16  # every window at most once; the partial batch dropped
        for b in rows:  # the windows of one track sit together (one run per track)
            tracks = [ex.entries[j][0] for j in b]
            assert all(tracks[k] == tracks[k - 1] or tracks[k] not in tracks[:k] for k in range(1, len(b)))
    assert epochs[0] != epochs[1]  # reshuffled per epoch
    b = next(iter(loader))
    assert b["segments"].shape[1:] == (1, 50, 128) and b["index"].shape == (8, 60)
    assert int(b["index"].max()) < len(b["segments"])


def test_training_segment_reuse_is_deterministic_on_several_threads():
    """Two runs of the same seeded training steps give bit-identical weights on a multi-threaded CPU (the
    window gather's backward must not accumulate in a thread-dependent order)."""
    items = _reuse_items()

    def run():
        torch.manual_seed(0)
        m = build("damff", width=0.0625, embed_dim=128, lstm_hidden=8)  # the demo's embedding size
        task = DynamicTask(FeatureConfig(), train_hop_s=2.5, train_reuse=True)
        opt = torch.optim.Adam(m.parameters(), 1e-2)
        for batch in task.train_loader(task.examples(items, m), batch_size=16, seed=0):
            loss = task.training_losses(m, batch)[0]["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
        return torch.cat([p.detach().flatten() for p in m.parameters()])

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        a, b = run(), run()
    finally:
        torch.set_num_threads(before)
    assert torch.equal(a, b)
