"""Training machinery: tasks, losses, folds, run directory, resume, model file from a run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fixtures_datasets import make_folder
from moodscope.config import FeatureConfig
from moodscope.metrics import ccc
from moodscope.modelfile import load_model
from moodscope.models import build
from moodscope.tasks.base import Item, _masked_ccc_loss, _masked_rmse_loss, crop_frames
from moodscope.tasks.dynamic import DynamicTask
from moodscope.training.data import carve_validation
from moodscope.training.experiment import run_experiment


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


def test_validation_carve_out_is_disjoint():
    ids = [f"s{i}" for i in range(20)]
    tr, va = carve_validation(ids, 0.1, seed=1)
    assert len(va) == 2 and not set(tr) & set(va) and set(tr) | set(va) == set(ids)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    root = make_folder(tmp, quirks=False, n_tracks=6, duration_s=31.0)
    cfg = {
        "name": "tiny",
        "model": {"name": "damff", "args": {"width": 0.0625, "embed_dim": 8, "lstm_hidden": 4}},
        "data": {"dataset": "folder", "root": str(root)},
        "task": {"train_hop_s": 10.0},
        "split": {"kind": "kfold", "folds": 2},
        "train": {"epochs": 2, "batch_size": 2, "patience": 5},
    }
    out = run_experiment(cfg, out_dir=tmp / "run", progress=False)
    return cfg, out, tmp / "run", root


def test_run_directory_contents(tiny_run):
    cfg, out, run, _ = tiny_run
    for name in (
        "config.yaml",
        "results.json",
        "results.md",
        "fold_0/model.safetensors",
        "fold_1/metrics.json",
    ):
        assert (run / name).is_file(), name
    res = json.loads((run / "results.json").read_text())
    assert len(res["folds"]) == 2
    test_ids = [set(f["test_ids"]) for f in res["folds"]]
    assert not test_ids[0] & test_ids[1] and len(test_ids[0] | test_ids[1]) == 6  # k-fold by song covers all
    for key in ("valence_ccc", "arousal_ccc", "valence_rmse"):
        assert key in res["summary"]
        assert f"| {key} |" in (run / "results.md").read_text()


def test_model_file_from_run_predicts_like_the_task(tiny_run):
    _, out, run, root = tiny_run
    bundle = load_model(run / "fold_0" / "model.safetensors")
    assert bundle.info["task"]["kind"] == "dynamic"
    assert bundle.model.norm.std.min() > 0 and not torch.allclose(
        bundle.model.norm.mean, torch.full((128,), -40.0)
    )


def test_resume_skips_finished_folds(tiny_run):
    cfg, out, run, _ = tiny_run
    before = (run / "fold_0" / "model.safetensors").stat().st_mtime_ns
    again = run_experiment(cfg, out_dir=run, resume=True, progress=False)
    assert (run / "fold_0" / "model.safetensors").stat().st_mtime_ns == before
    assert again["summary"] == out["summary"]


@pytest.mark.slow
def test_hop_sweep_trains_once_and_reevaluates(tiny_run, tmp_path, monkeypatch):
    """A sweep whose rows change only the evaluation hops (DAMFF Figure 3) trains the first row's folds and
    re-scores those models per row: the same hops reproduce the trained run's numbers exactly, another hop
    gives its own numbers, and no second training happens."""
    import moodscope.training.experiment as train

    cfg, out, run, _ = tiny_run
    calls = []
    real = train.train_fold
    monkeypatch.setattr(train, "train_fold", lambda *a, **k: calls.append(1) or real(*a, **k))
    hops_used = set()
    real_predict = DynamicTask.predict
    monkeypatch.setattr(
        DynamicTask,
        "predict",
        lambda self, *a, **k: (
            hops_used.add((self.hop_valence, self.hop_arousal)) or real_predict(self, *a, **k)
        ),
    )
    sweep = dict(cfg, sweep={"0.5": {"task.hop_valence": 0.5}, "same": {"task.hop_valence": 0.5}})
    sweep["sweep"]["5"] = {"task.hop_valence": 5.0, "task.hop_arousal": 5.0}
    res = run_experiment(sweep, out_dir=tmp_path / "sw", progress=False)
    assert len(calls) == 2  # two folds, trained once
    rows = res["sweep"]
    assert rows["same"]["summary"] == rows["0.5"]["summary"]
    assert rows["0.5"]["summary"] == out["summary"]  # same seed, same data: the tiny_run models again
    assert hops_used == {(0.5, 0.5), (5.0, 5.0)}  # both hops reached the task
    fold = json.loads((tmp_path / "sw" / "5" / "fold_1" / "metrics.json").read_text())
    assert fold["trained_in"].endswith("0.5/fold_1")
    assert "re-evaluated" in res["table"]
    # a row that changes training retrains
    calls.clear()
    sweep["sweep"] = {"a": {"task.hop_valence": 0.5}, "b": {"train.lr": 1.0e-3}}
    run_experiment(sweep, out_dir=tmp_path / "sw2", progress=False)
    assert len(calls) == 4


@pytest.mark.parametrize("model", ["damff", "classical"])
def test_tracks_without_the_tasks_labels_are_not_scored(model, tmp_path):
    """A release that labels tracks unevenly (the quirky folder tree has tracks with static labels only): they
    may land in a test or validation split, and are left out of scoring instead of breaking the fold."""
    from moodscope.datasets import load_dataset

    root = make_folder(tmp_path, quirks=True, n_tracks=6, duration_s=12.0)
    ds = load_dataset("folder", root)
    no_curve = {t.id for t in ds.tracks if t.dynamic is None}
    assert no_curve, "fixture should hold a track without dynamic labels"
    cfg = {
        "name": "uneven",
        "model": {"name": model, "args": {"width": 0.0625, "embed_dim": 8, "lstm_hidden": 4}},
        "data": {"dataset": "folder", "root": str(root)},
        "task": {"window_s": 10.0},
        "split": {"kind": "kfold", "folds": 2},
        "train": {"epochs": 1, "batch_size": 2},
    }
    out = run_experiment(cfg, out_dir=tmp_path / "run", progress=False)
    for f in out["folds"]:
        scored = f["n_test"]
        assert scored == len([i for i in f["test_ids"] if i not in no_curve])
    assert sum(len(set(f["test_ids"]) & no_curve) for f in out["folds"]) >= 1


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
