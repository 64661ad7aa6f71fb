"""musicnn_va's piano level (``piano_level``): construction, the closed-form fit, the refit and its config."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moodscope.config import MUSICNN_EMBEDDING
from moodscope.models import build
from moodscope.tasks.base import Item
from moodscope.tasks.mood import MoodTask

Q = ["Q1", "Q2", "Q3", "Q4"]
ARGS = dict(width=0.25, mode_features=False, clip_head=True, movement_past_s=4.0)


@pytest.fixture(scope="module")
def task():
    return MoodTask(MUSICNN_EMBEDDING, tag_names=Q)


def _model(level: float = 0.5):
    torch.manual_seed(0)
    m = build("musicnn_va", piano_level=level, **ARGS)
    m.set_input_stats(np.zeros(250, np.float32), np.ones(250, np.float32))
    return m.eval()


def _track(seed: int, piano: bool):
    """Features of a track: column 5's mean sets its (planted) level, column 7's mean says piano (+1.5) or not
    (-1.5); the rest is small noise (whose statistics the fit standardises by at least ``LEVEL_SD_FLOOR``).
    Returns ``(feats, level)``."""
    rng = np.random.default_rng(seed)
    f = rng.normal(0, 0.05, (60, 250)).astype(np.float32)
    u = rng.uniform(-1, 1)
    f[:, 5] += np.float32(2 * u)
    f[:, 7] += np.float32(1.5 if piano else -1.5)
    return f, np.array([0.4 * u, -0.3 * u])


def test_building_a_piano_level_draws_nothing_and_starts_as_the_identity(task):
    torch.manual_seed(5)
    plain = build("musicnn_va", **ARGS)
    after = torch.rand(3)
    torch.manual_seed(5)
    m = build("musicnn_va", piano_level=0.5, **ARGS)
    assert torch.equal(torch.rand(3), after)  # the rest of training draws what it drew without it
    for k, v in plain.state_dict().items():
        assert torch.equal(m.state_dict()[k], v), k
    assert not any(p.requires_grad for p in m.piano.parameters())
    plain.set_input_stats(np.zeros(250, np.float32), np.ones(250, np.float32))
    m.set_input_stats(np.zeros(250, np.float32), np.ones(250, np.float32))
    f, _ = _track(1, True)
    assert np.array_equal(task.predict(m.eval(), f), task.predict(plain.eval(), f))  # unfitted: no change
    with pytest.raises(ValueError, match="needs movement_past_s"):
        build("musicnn_va", width=0.25, mode_features=False, piano_level=0.5)
    with pytest.raises(ValueError, match="piano_level"):
        build("musicnn_va", piano_level=1.5, **ARGS)


def test_fit_piano_level_moves_piano_levels_halfway_and_leaves_other_music(task, tmp_path):
    from moodscope.modelfile import load_model, save_model
    from moodscope.models.piano_level import fit_piano_level

    m = _model(0.5)
    train = [_track(i, True) for i in range(40)]
    others = [_track(100 + i, False)[0] for i in range(40)]
    gate = [(f, True) for f, _ in train] + [(f, False) for f in others]
    info = fit_piano_level(m, [(f, y, 1.0) for f, y in train], gate, alpha=1.0, gate_c=100.0)
    assert info["tracks"] == 40 and info["gate_tracks"] == 80 and info["gate_accuracy"] == 1.0
    assert not any(p.requires_grad for p in m.piano.parameters())
    plain = build("musicnn_va", **ARGS).eval()
    plain.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("piano.")})
    moved = []
    for seed in range(200, 210):  # tracks the fit never saw
        f, level = _track(seed, True)
        before, after = task.predict(plain, f)[:, :2], task.predict(m, f)[:, :2]
        # the level goes half way to the fitted one (the planted level, recovered); the movement is kept
        assert np.allclose(after.mean(0), before.mean(0) + 0.5 * (level - before.mean(0)), atol=0.03)
        assert np.allclose(after - after.mean(0), before - before.mean(0), atol=1e-5)
        moved.append(np.abs(after.mean(0) - before.mean(0)).max())
        g, _ = _track(seed + 50, False)
        assert np.allclose(task.predict(m, g)[:, :2], task.predict(plain, g)[:, :2], atol=1e-3)  # gate closed
    assert max(moved) > 0.05  # the check above is not vacuous
    save_model(tmp_path / "m.safetensors", m, MUSICNN_EMBEDDING)
    back = load_model(tmp_path / "m.safetensors").model
    f, _ = _track(300, True)
    assert np.allclose(task.predict(back, f), task.predict(m, f), atol=1e-6)
    with pytest.raises(ValueError, match="no piano level"):
        fit_piano_level(plain, [(f, np.zeros(2), 1.0)], gate)
    with pytest.raises(ValueError, match="solo-piano and other"):
        fit_piano_level(m, [(f, np.zeros(2), 1.0)], [(f, True)])


def test_refit_piano_level_takes_curve_means_and_scaled_quadrants_each_source_weighing_the_same(
    task, monkeypatch
):
    from moodscope.training import fold

    seen = {}

    def fake_fit(model, tracks, gate, **kw):
        seen.update(tracks=tracks, gate=gate, kw=kw)
        return {"tracks": len(tracks)}

    monkeypatch.setattr("moodscope.models.piano_level.fit_piano_level", fake_fit)
    curve = np.full((60, 2), 0.3, np.float32)
    curve[50:] = np.nan  # unlabelled tail: left out of the mean
    curve[:10, 0] = -0.3
    items = [
        Item("p1", _track(1, True)[0], dynamic=curve),
        Item("p2", _track(2, True)[0], dynamic=curve),
        Item("emopia:e1", _track(3, True)[0], tags=np.array([0, 1, 0, 0], np.float32)),  # Q2: V-, A+
        Item("4q:c1", _track(4, False)[0], tags=np.array([1, 0, 0, 0], np.float32)),
        Item("synthetic:s", _track(5, False)[0], dynamic=curve),
    ]
    out = fold.refit_piano_level(
        _model(), task, items, sources=["main", "emopia"], quadrant_scale=0.25, alpha=3.0
    )
    assert out["sources"] == {"main": 2, "emopia": 1}
    levels = {round(float(y[0]), 4): (y, w) for _, y, w in seen["tracks"]}
    assert np.allclose(levels[0.18][0], [0.18, 0.3])  # (40 x 0.3 - 10 x 0.3) / 50 and 0.3
    assert np.allclose(levels[-0.25][0], [-0.25, 0.25])  # the quadrant's signs times the scale
    assert levels[0.18][1] == pytest.approx(0.75) and levels[-0.25][1] == pytest.approx(
        1.5
    )  # 2 x 0.75 = 1 x 1.5
    # sorted by id: 4q:c1, emopia:e1, p1, p2, synthetic:s
    assert [p for _, p in seen["gate"]] == [False, True, True, True, False]
    assert seen["kw"] == {"alpha": 3.0, "gate_c": 1.0}
    with pytest.raises(ValueError, match=r"no training track with a curve or a quadrant from \['vgmidi'\]"):
        fold.refit_piano_level(_model(), task, items, sources=["main", "vgmidi"])  # a misspelt source
    # an unlabelled track is in neither the level nor the gate; the gate's order is the ids'
    items.append(Item("4q:nolabel", _track(6, False)[0]))
    fold.refit_piano_level(_model(), task, items[::-1], sources=["main", "emopia"])
    assert len(seen["gate"]) == 5 and [p for _, p in seen["gate"]] == [False, True, True, True, False]


def test_level_fit_is_checked():
    from moodscope.errors import ConfigError
    from moodscope.training.config import load_config

    cfg = load_config(None, ["train.level_fit={sources: [vgmidi, emopia], alpha: 100, quadrant_scale: 0.2}"])
    assert cfg["train"]["level_fit"]["sources"] == ["vgmidi", "emopia"]
    for bad in (
        "{alpha: 1}",
        "{sources: []}",
        "{sources: vgmidi}",
        "{sources: [a], alpha: -1}",
        "{sources: [a], x: 1}",
    ):
        with pytest.raises(ConfigError, match="train.level_fit: expected"):
            load_config(None, [f"train.level_fit={bad}"])


def test_level_fit_is_checked_against_the_model_and_the_data_before_training():
    from moodscope.errors import ConfigError
    from moodscope.training.fold import _check_level_fit

    cfg = {"data": {"dataset": "vgmidi", "also": [{"dataset": "emopia"}, {"dataset": "emopia"}]}}
    cfg["train"] = {"level_fit": {"sources": ["main", "emopia", "emopia#2"]}}
    _check_level_fit(cfg, _model())
    cfg["train"]["level_fit"]["sources"] = ["main", "empoia"]
    with pytest.raises(ConfigError, match=r"train.level_fit.sources: \['empoia'\] name no data source"):
        _check_level_fit(cfg, _model())
    with pytest.raises(ConfigError, match="no piano level to fit"):
        _check_level_fit(cfg, build("musicnn_va", **ARGS))


def test_an_unfitted_level_changes_nothing_and_the_level_stays_in_the_fitted_range():
    from moodscope.models.piano_level import fit_piano_level

    m = _model()
    stats = m.track_parts(_track(1, True)[0])[1]
    with torch.no_grad():
        m.piano.gate.bias.fill_(30.0)  # an open gate and a level, but not fitted: skipped
        m.piano.map.bias.fill_(0.5)
    f, _ = _track(2, True)
    curve = np.full((60, 2), 0.1)
    assert np.array_equal(m.track_curve(f, curve), np.clip(curve, -1, 1))
    train = [_track(i, True) for i in range(20)]
    gate = [(f_, True) for f_, _ in train] + [(_track(50 + i, False)[0], False) for i in range(20)]
    fit_piano_level(m, [(f_, y, 1.0) for f_, y in train], gate, alpha=1.0)
    lo, hi = np.min([y for _, y in train], 0), np.max([y for _, y in train], 0)
    far = stats * 0 + 1e3  # statistics far outside what the fit saw
    level, _ = m.piano(far)
    assert np.all(level.numpy() >= lo - 1e-6) and np.all(level.numpy() <= hi + 1e-6)
    assert float(m.piano.fitted) == 1.0


def test_refit_piano_level_does_not_depend_on_the_order_of_the_tracks(task):
    """Training passes its carved training + validation tracks, tools/add_piano_level.py the split's lists: the
    same tracks in another order must give the same fit, bit for bit."""
    from moodscope.training import fold

    items = []
    for i in range(12):
        f, y = _track(i, piano=i % 3 != 0)
        if i % 3 == 0:
            items.append(Item(f"4q:c{i}", f, tags=np.eye(4, dtype=np.float32)[i % 4]))
        elif i % 3 == 1:
            items.append(Item(f"p{i}", f, dynamic=np.tile(y.astype(np.float32), (60, 1))))
        else:
            items.append(Item(f"emopia:e{i}", f, tags=np.eye(4, dtype=np.float32)[i % 4]))
    a, b = _model(), _model()
    fa = fold.refit_piano_level(a, task, items, sources=["main", "emopia"], alpha=1.0)
    fb = fold.refit_piano_level(b, task, items[5:] + items[:5][::-1], sources=["main", "emopia"], alpha=1.0)
    assert fa == fb
    for k, v in a.piano.state_dict().items():
        assert torch.equal(b.piano.state_dict()[k], v), k
    assert float(a.piano.fitted) == 1.0
