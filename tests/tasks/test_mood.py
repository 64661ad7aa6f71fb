"""The ``mood`` task: clip signs from quadrant tags or static labels, training windows with curve and sign
targets, the combined loss, whole-track outputs (curve, tags, quadrant probabilities), metrics, and the
classical reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from moodscope.config import MUSICNN_EMBEDDING, FeatureConfig
from moodscope.models import build
from moodscope.models.base import InputNorm
from moodscope.models.musicnn import MSD_TAGS
from moodscope.tasks.base import Item
from moodscope.tasks.mood import MOOD_TAGS, MoodTask, sign_metrics

Q = ["Q1", "Q2", "Q3", "Q4"]
SIGNS = {"Q1": (1, 1), "Q2": (-1, 1), "Q3": (-1, -1), "Q4": (1, -1)}


def feats(steps: int, seed: int = 0) -> np.ndarray:
    """Random ``kind="musicnn"`` features: one 250-wide row per 0.5 s step."""
    return np.random.default_rng(seed).normal(0, 1, (steps, 250)).astype(np.float32)


def one_hot(q: str, names=Q) -> np.ndarray:
    return np.array([1.0 if n == q else 0.0 for n in names], np.float32)


@pytest.fixture(scope="module")
def task():
    return MoodTask(MUSICNN_EMBEDDING, tag_names=Q)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build("musicnn_va", width=0.25, mode_features=False)  # 250-wide rows: no mode extra
    m.set_input_stats(np.zeros(250, np.float32), np.ones(250, np.float32))
    return m.eval()


class Constant(nn.Module):
    """A stub mood model: ``value`` on the first ``valid`` steps of every window, ``rest`` after them."""

    def __init__(self, value: float, rest: float | None = None, valid: int | None = None):
        super().__init__()
        self.norm = InputNorm(250)  # (its mean pads short windows)
        self.value, self.rest, self.valid = value, rest, valid

    def forward(self, x):
        out = torch.full((x.shape[0], x.shape[2], 2), self.value)
        if self.valid is not None:
            out[:, self.valid :] = self.rest
        return out


# ----------------------------------------------------------------------------------------------------
# labels


@pytest.mark.parametrize("q", Q)
def test_signs_from_quadrant_tags(q):
    names = ["Q3", "happy", "Q1", "Q2", "Q4"]  # the tag columns in any order, with other tags
    t = MoodTask(MUSICNN_EMBEDDING, tag_names=names)
    sign = t.signs(Item("a", feats(4), tags=one_hot(q, names)))
    np.testing.assert_array_equal(sign, SIGNS[q])
    # quadrant tags win over static labels; soft tags: the largest
    soft = np.array([0.1, 0.9, 0.2, 0.0, 0.0], np.float32) + 0.5 * one_hot(q, names)
    it = Item("b", feats(4), static=np.array([-0.5, -0.5], np.float32), tags=soft)
    np.testing.assert_array_equal(t.signs(it), SIGNS[q])


def test_signs_from_static_labels_and_none_without(task):
    np.testing.assert_array_equal(task.signs(Item("a", feats(4), static=np.array([0.3, -0.2]))), [1, -1])
    np.testing.assert_array_equal(task.signs(Item("a", feats(4), static=np.array([-0.3, 0.0]))), [-1, 1])
    # no quadrant tag set: the static labels decide
    zero_tags = Item("b", feats(4), static=np.array([-0.1, -0.1]), tags=np.zeros(4, np.float32))
    np.testing.assert_array_equal(task.signs(zero_tags), [-1, -1])
    assert task.signs(Item("c", feats(4))) is None
    assert task.signs(Item("d", feats(4), tags=np.zeros(4, np.float32))) is None
    assert task.signs(Item("e", feats(4), static=np.array([np.nan, 0.5]))) is None
    # a dataset without Q1..Q4 columns: tags are not quadrants
    plain = MoodTask(MUSICNN_EMBEDDING, tag_names=["happy", "sad", "Q1"])
    assert plain.signs(Item("f", feats(4), tags=np.array([1.0, 0.0, 1.0]))) is None


def test_has_labels(task):
    assert task.has_labels(Item("a", feats(4), dynamic=np.zeros((4, 2), np.float32)))
    assert task.has_labels(Item("b", feats(4), tags=one_hot("Q3")))
    assert task.has_labels(Item("c", feats(4), static=np.array([0.1, 0.1], np.float32)))
    assert not task.has_labels(Item("d", feats(4)))
    assert not task.has_labels(Item("e", feats(4), tags=np.zeros(4, np.float32)))
    items = [Item("x", feats(4)), Item("y", feats(4), tags=one_hot("Q1"))]
    assert [it.id for it in task.labelled(items)] == ["y"]


# ----------------------------------------------------------------------------------------------------
# training


@pytest.fixture(scope="module")
def items():
    curve = np.random.default_rng(5).uniform(-1, 1, (80, 2)).astype(np.float32)
    return [
        Item("curve", feats(80, 1), dynamic=curve),  # 40 s with a curve
        Item("short", feats(40, 2), tags=one_hot("Q2")),  # 20 s: one padded window
        Item("long", feats(100, 3), static=np.array([0.4, -0.3], np.float32)),  # 50 s: three windows
        Item("none", feats(70, 4)),  # no label: no window
    ]


def test_examples_windows_masks_and_sign_targets(task, model, items):
    ds = task.examples(items, model)
    entries = [(e[0], e[1], int(e[-1])) for e in ds.entries]  # (item, start, valid steps)
    assert entries == [(0, 0, 60), (0, 20, 60), (1, 0, 40), (2, 0, 60), (2, 20, 60), (2, 40, 60)]
    for k in range(len(ds)):
        x, y, m, sign, sign_mask, valid = ds[k]
        assert x.shape == (1, 60, 250) and y.shape == m.shape == (60, 2)
        assert sign.shape == sign_mask.shape == (2,) and valid.shape == (60,)
    # the curve: targets where labelled, no sign
    x, y, m, sign, sign_mask, valid = ds[1]
    np.testing.assert_array_equal(x[0].numpy(), items[0].feats[20:80])
    np.testing.assert_array_equal(y.numpy(), items[0].dynamic[20:80])
    assert m.all() and not sign_mask.any() and valid.all()
    # the short Q2 clip: one window, padded with the normalisation mean, 40 valid steps, no curve
    x, y, m, sign, sign_mask, valid = ds[2]
    np.testing.assert_array_equal(x[0, :40].numpy(), items[1].feats)
    np.testing.assert_array_equal(x[0, 40:].numpy(), np.broadcast_to(model.norm.mean.numpy(), (20, 250)))
    assert not m.any() and not y.any()
    np.testing.assert_array_equal(sign.numpy(), [-1, 1])
    assert sign_mask.all() and valid[:40].all() and not valid[40:].any()
    # the long clip from static labels: windows every train_hop_s (10 s), the last aligned to the end
    x, y, m, sign, sign_mask, valid = ds[5]
    np.testing.assert_array_equal(x[0].numpy(), items[2].feats[40:100])
    np.testing.assert_array_equal(sign.numpy(), [1, -1])
    assert sign_mask.all() and valid.all() and not m.any()


def test_a_curve_track_with_signs_carries_both(task, model):
    it = Item("both", feats(30), dynamic=np.zeros((30, 2), np.float32), tags=one_hot("Q4"))
    x, y, m, sign, sign_mask, valid = task.examples([it], model)[0]
    assert m[:30].all() and not m[30:].any()
    np.testing.assert_array_equal(sign.numpy(), [1, -1])
    assert sign_mask.all() and int(valid.sum()) == 30


def _batch(task, model, items):
    ds = task.examples(items, model)
    return next(iter(torch.utils.data.DataLoader(ds, batch_size=len(ds))))


def test_training_losses_finite_with_the_real_head(task, model, items):
    batch = _batch(task, model, items)
    losses, n = task.training_losses(model, batch)
    assert n == 6 and losses["loss"].requires_grad
    losses = {k: v.detach() for k, v in losses.items()}
    for k in ("loss", "loss_curve", "loss_sign"):
        assert torch.isfinite(losses[k]), k
    assert float(losses["loss"]) == pytest.approx(float(losses["loss_curve"] + losses["loss_sign"]), rel=1e-6)
    w = MoodTask(MUSICNN_EMBEDDING, tag_names=Q, sign_weight=2.0, curve_weight=0.5)
    lw = {k: v.detach() for k, v in w.training_losses(model, batch)[0].items()}
    assert float(lw["loss"]) == pytest.approx(
        float(0.5 * losses["loss_curve"] + 2.0 * losses["loss_sign"]), rel=1e-5
    )
    # sign-only batches: the curve loss is a zero that still has a gradient path
    only_signs = _batch(task, model, items[1:3])
    lo, _ = task.training_losses(model, only_signs)
    assert (
        lo["loss_curve"].requires_grad
        and float(lo["loss_curve"].detach()) == 0.0
        and float(lo["loss_sign"].detach()) > 0
    )


def test_sign_loss_is_the_bce_of_the_clip_mean(task, items):
    q1 = Item("q1", feats(40), tags=one_hot("Q1"))
    batch = _batch(task, Constant(0.0), [q1])
    right = task.training_losses(Constant(0.5), batch)[0]["loss_sign"]
    wrong = task.training_losses(Constant(-0.5), batch)[0]["loss_sign"]
    assert float(right) == pytest.approx(math.log1p(math.exp(-2.0)), rel=1e-5)  # sigmoid(4 * 0.5)
    assert float(wrong) == pytest.approx(math.log1p(math.exp(2.0)), rel=1e-5)
    # padded steps (40..59) do not count in the clip's mean
    masked = task.training_losses(Constant(0.5, rest=-5.0, valid=40), batch)[0]["loss_sign"]
    assert float(masked) == pytest.approx(float(right), rel=1e-6)
    # items without signs do not count either
    with_curve = _batch(task, Constant(0.0), [q1, items[0]])
    mixed = task.training_losses(Constant(0.5), with_curve)[0]["loss_sign"]
    assert float(mixed) == pytest.approx(float(right), rel=1e-6)


def test_sign_loss_decreases_when_training_the_head():
    task = MoodTask(MUSICNN_EMBEDDING, tag_names=Q, window_s=10.0)
    torch.manual_seed(1)
    m = build("musicnn_va", width=0.25, mode_features=False)  # 250-wide rows: no mode extra
    m.set_input_stats(np.zeros(250, np.float32), np.ones(250, np.float32))
    clips = [Item(f"c{i}", feats(20, 10 + i), tags=one_hot(Q[i % 4])) for i in range(8)]
    for i, it in enumerate(clips):  # a feature that says the quadrant
        it.feats[:, :4] += 3 * one_hot(Q[i % 4])
    batch = _batch(task, m, clips)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    m.eval()  # no dropout: the same batch gives the same loss
    first = float(task.training_losses(m, batch)[0]["loss_sign"].detach())
    for _ in range(15):
        opt.zero_grad()
        task.training_losses(m, batch)[0]["loss"].backward()
        opt.step()
    assert float(task.training_losses(m, batch)[0]["loss_sign"].detach()) < 0.5 * first


# ----------------------------------------------------------------------------------------------------
# whole tracks


def test_predict_curve_then_tag_probabilities(task, model):
    f = feats(37, 7)
    out = task.predict(model, f)
    assert out.shape == (37, 52)
    assert np.all(np.abs(out[:, :2]) < 1)
    np.testing.assert_allclose(out[:, 2:], 1 / (1 + np.exp(-f[:, 200:].astype(np.float64))), rtol=1e-6)
    blocks = task.predict_blocks(model, iter([f[:20], f[20:]]))  # joined: the whole track at once
    np.testing.assert_allclose(blocks, out, rtol=0, atol=1e-6)


def test_result_fields(task):
    rng = np.random.default_rng(3)
    n = 10
    curve = np.column_stack([rng.uniform(-0.2, 0.8, n), rng.uniform(-0.9, 0.1, n)])  # mean V+ A-
    probs = rng.uniform(0, 1, (n, 50))
    fields = task.result_fields(np.concatenate([curve, probs], axis=1), duration_s=5.2)
    assert fields["static"]["valence"] == pytest.approx(curve[:, 0].mean())
    assert fields["static"]["arousal"] == pytest.approx(curve[:, 1].mean())
    np.testing.assert_allclose(fields["dynamic"]["valence"], curve[:, 0])
    np.testing.assert_allclose(fields["dynamic"]["times_s"], np.arange(n) * 0.5)
    assert list(fields["tags"]) == list(MOOD_TAGS)
    for t, p in fields["tags"].items():
        assert 0 <= p <= 1
        assert p == pytest.approx(probs[:, MSD_TAGS.index(t)].mean())
    qp = fields["extra"]["quadrant_probabilities"]
    assert list(qp) == Q
    assert sum(qp.values()) == pytest.approx(1.0, abs=5e-4)
    assert max(qp, key=qp.get) == "Q4"
    # a track shorter than its output rows: the rows past the audio are dropped everywhere
    short = task.result_fields(np.concatenate([curve, probs], axis=1), duration_s=2.0)
    assert len(short["dynamic"]["valence"]) == 4
    assert short["static"]["valence"] == pytest.approx(curve[:4, 0].mean())
    assert short["tags"]["happy"] == pytest.approx(probs[:4, MSD_TAGS.index("happy")].mean())


@pytest.mark.parametrize(("v", "a", "q"), [(0.3, 0.2, "Q1"), (-0.3, 0.2, "Q2"), (-0.1, -0.4, "Q3")])
def test_quadrant_probabilities_follow_the_static_point(task, v, a, q):
    out = np.column_stack([np.full(6, v), np.full(6, a), np.full((6, 50), 0.5)])
    qp = task.result_fields(out, 3.0)["extra"]["quadrant_probabilities"]
    assert max(qp, key=qp.get) == q
    pv, pa = 1 / (1 + math.exp(-4 * v)), 1 / (1 + math.exp(-4 * a))
    assert qp["Q1"] == pytest.approx(pv * pa, abs=1e-4)


# ----------------------------------------------------------------------------------------------------
# metrics


def _values(quadrants, scale=0.5):
    return np.array([SIGNS[q] for q in quadrants], np.float64) * scale


def test_sign_metrics_perfect():
    qs = ["Q1", "Q2", "Q3", "Q4", "Q1", "Q3"]
    m = sign_metrics(_values(qs, 1.0), _values(qs, 0.3) * np.linspace(1, 2, 6)[:, None])
    assert list(m) == [
        "quadrant_accuracy",
        "quadrant_macro_f1",
        "valence_sign_accuracy",
        "valence_auc",
        "arousal_sign_accuracy",
        "arousal_auc",
    ]
    for k, v in m.items():
        assert v == 1.0, k


def test_sign_metrics_known_confusion():
    true = ["Q1", "Q1", "Q2", "Q2", "Q3", "Q3", "Q4", "Q4"]
    values = np.array(
        [
            [0.5, 0.5],  # Q1 -> Q1
            [-0.1, 0.4],  # Q1 -> Q2
            [-0.6, 0.3],  # Q2 -> Q2
            [-0.2, 0.7],  # Q2 -> Q2
            [-0.4, -0.5],  # Q3 -> Q3
            [0.2, -0.3],  # Q3 -> Q4
            [0.3, -0.6],  # Q4 -> Q4
            [0.1, 0.2],  # Q4 -> Q1
        ]
    )
    m = sign_metrics(_values(true, 1.0), values)
    assert m["quadrant_accuracy"] == pytest.approx(5 / 8)
    # per-quadrant F1: Q1 P 1/2 R 1/2; Q2 P 2/3 R 1; Q3 P 1 R 1/2; Q4 P 1/2 R 1/2
    assert m["quadrant_macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3 + 0.5) / 4)
    assert m["valence_sign_accuracy"] == pytest.approx(6 / 8)
    assert m["arousal_sign_accuracy"] == pytest.approx(7 / 8)
    # valence: 14 of the 16 (positive, negative) pairs ranked right; arousal: all
    assert m["valence_auc"] == pytest.approx(14 / 16)
    assert m["arousal_auc"] == pytest.approx(1.0)


def test_sign_metrics_auc_is_nan_with_one_class():
    m = sign_metrics(_values(["Q1", "Q1", "Q2"], 1.0), np.array([[0.1, 0.1], [0.2, -0.1], [0.4, 0.4]]))
    assert math.isnan(m["arousal_auc"])  # every clip aroused
    assert m["valence_auc"] == pytest.approx(0.0)  # the one V- clip has the highest valence
    assert m["arousal_sign_accuracy"] == pytest.approx(2 / 3)
    zero = sign_metrics(_values(["Q1"], 1.0), np.zeros((1, 2)))  # zero counts as positive
    assert zero["quadrant_accuracy"] == 1.0 and math.isnan(zero["valence_auc"])


def test_evaluate_sign_clips_and_curves(task):
    curve = np.linspace(-0.5, 0.5, 20)[:, None] * np.array([[1.0, -1.0]])
    items = [
        Item("q1", feats(8), tags=one_hot("Q1")),
        Item("q3", feats(8), static=np.array([-0.5, -0.1], np.float32)),
        Item("c", feats(20), dynamic=curve.astype(np.float32)),
        Item("none", feats(8)),
    ]
    tags = np.zeros((8, 50))
    preds = [
        np.column_stack([np.full((8, 2), 0.3), tags]),  # Q1: right
        np.column_stack([np.full((8, 2), -0.2), tags]),  # Q3: right
        np.column_stack([curve, np.zeros((20, 50))]),  # the curve exactly
        np.zeros((8, 52)),
    ]
    m = task.evaluate(items, preds)
    assert m["quadrant_accuracy"] == 1.0 and m["valence_sign_accuracy"] == 1.0
    assert m["valence_ccc"] == pytest.approx(1.0) and m["arousal_ccc"] == pytest.approx(1.0)
    assert m["valence_rmse"] == pytest.approx(0.0, abs=1e-6)
    only_curve = task.evaluate(items[2:3], preds[2:3])
    assert "quadrant_accuracy" not in only_curve and "valence_ccc" in only_curve
    only_signs = task.evaluate(items[:2], preds[:2])
    assert "valence_ccc" not in only_signs and only_signs["arousal_sign_accuracy"] == 1.0
    with pytest.raises(ValueError, match="no track"):
        task.evaluate(items[3:], preds[3:])


def test_score():
    assert MoodTask.score({"quadrant_accuracy": 0.6}) == pytest.approx(0.6)
    assert MoodTask.score({"valence_ccc": 0.2, "arousal_ccc": 0.4}) == pytest.approx(0.3)
    both = {"quadrant_accuracy": 0.6, "valence_ccc": 0.2, "arousal_ccc": 0.4}
    assert MoodTask.score(both) == pytest.approx(0.45)


# ----------------------------------------------------------------------------------------------------
# the classical reference (clip statistics of log-Mel, a logistic regression per sign)


def _logmel_clip(q: str, seed: int) -> Item:
    """Log-Mel whose low bands are loud for V+ and high bands loud for A+ (and quiet otherwise)."""
    x = np.random.default_rng(seed).normal(-60, 3, (150, 128)).astype(np.float32)
    v, a = SIGNS[q]
    x[:, :32] += 15 * v
    x[:, 64:] += 15 * a
    return Item(f"{q}-{seed}", x, tags=one_hot(q))


def test_classical_examples():
    from moodscope.training.classical import ClassicalReference

    t = MoodTask(FeatureConfig(), tag_names=Q)
    ref = ClassicalReference(t)
    X, Y = t.classical_examples(_logmel_clip("Q2", 0), ref)
    assert X.shape == (1, 104) and Y.shape == (1, 2)
    np.testing.assert_array_equal(Y, [[0, 1]])
    assert Y.dtype.kind == "i"
    assert t.classical_examples(Item("n", np.zeros((150, 128), np.float32)), ref) is None


def test_classical_reference_learns_the_signs():
    from moodscope.training.classical import ClassicalReference

    t = MoodTask(FeatureConfig(), tag_names=Q)
    train = [_logmel_clip(q, s) for s in range(3) for q in Q]
    ref = ClassicalReference(t).fit(train + [Item("unlabelled", np.zeros((150, 128), np.float32))])
    for q in Q:
        p = ref.predict_item(_logmel_clip(q, 100))
        assert p.shape == (1, 2)
        np.testing.assert_array_equal(np.sign(p[0]), SIGNS[q])
        assert np.all(np.abs(p) <= 1)
    test = [_logmel_clip(q, 200) for q in Q]
    m = t.evaluate(test, [ref.predict_item(it) for it in test])
    assert m["quadrant_accuracy"] == 1.0


# ----------------------------------------------------------------------------------------------------
# the clip head (quadrant classifier on window statistics)


def _clip_model(seed: int = 0):
    torch.manual_seed(seed)
    m = build("musicnn_va", width=0.25, mode_features=False, clip_head=True)
    m.set_input_stats(np.zeros(250, np.float32), np.ones(250, np.float32))
    return m.eval()


def test_clip_head_level_is_the_quadrant_probabilities_and_padding_is_left_out():
    m = _clip_model()
    x = torch.from_numpy(feats(40, 3))[None, None]  # (1, 1, 40, 250)
    with torch.no_grad():
        y = m(x)[0]
        p = torch.softmax(m.last_quadrant_logits[0], 0)
        level = torch.stack([p[0] + p[3] - p[1] - p[2], p[0] + p[1] - p[2] - p[3]])
        # the curve's mean is the level (no step clipped here)
        assert torch.allclose(y.mean(0), level, atol=1e-5)
        # the same 40 steps padded to 60 with the normalisation mean (what the sliding window does):
        # the same level, the same curve on the real steps' statistics
        padded = torch.cat([x, torch.zeros(1, 1, 20, 250)], dim=2)
        y2 = m(padded)[0]
        assert torch.allclose(torch.softmax(m.last_quadrant_logits[0], 0), p, atol=1e-6)
        assert torch.allclose(y2[:40].mean(0), level, atol=1e-5)


def test_quadrant_cross_entropy_is_added_for_clips_with_both_signs(task, items):
    m = _clip_model()
    batch = _batch(task, m, [Item("q2", feats(40), tags=one_hot("Q2")), items[0]])
    m.train()
    losses = {k: v.detach() for k, v in task.training_losses(m, batch)[0].items()}
    assert "loss_quadrant" in losses and float(losses["loss_quadrant"]) > 0
    logits = m.last_quadrant_logits.detach()
    expected = torch.nn.functional.cross_entropy(logits[:1], torch.tensor([1]))  # Q2 is class 1
    assert float(losses["loss_quadrant"]) == pytest.approx(float(expected), rel=1e-5)
    total = losses["loss_curve"] + losses["loss_sign"] + losses["loss_quadrant"]
    assert float(losses["loss"]) == pytest.approx(float(total), rel=1e-5)


def test_clip_head_learns_quadrants_from_window_statistics():
    """A quadrant that only the spread of a feature tells (its mean is the same in every clip) is learnt by the
    clip head: the mean and the standard deviation both reach it."""
    task = MoodTask(MUSICNN_EMBEDDING, tag_names=Q, window_s=10.0)
    m = _clip_model(1)
    clips = []
    for i in range(16):
        f = feats(20, 40 + i)
        q = i % 4
        f[:, 0] += 3.0 if q in (0, 3) else -3.0  # valence sign in a mean
        f[:, 1] *= 4.0 if q in (0, 1) else 0.25  # arousal sign in a spread
        clips.append(Item(f"c{i}", f, tags=one_hot(Q[q])))
    batch = _batch(task, m, clips)
    opt = torch.optim.Adam(m.parameters(), lr=3e-2)
    m.eval()
    for _ in range(60):
        opt.zero_grad()
        task.training_losses(m, batch)[0]["loss"].backward()
        opt.step()
    with torch.no_grad():
        static = m(batch[0]).mean(1)
    signs = torch.tensor([SIGNS[Q[i % 4]] for i in range(16)], dtype=torch.float32)
    assert bool(((static > 0) == (signs > 0)).all())


def test_fit_clip_head_computes_the_fitted_logistic_regression():
    """The refit folds the standardisation into the layer: the model's quadrant logits are scikit-learn's
    decision function on the windows' statistics, up to a per-window constant (softmax is shift-invariant)."""
    from sklearn.linear_model import LogisticRegression

    from moodscope.models.musicnn_va import fit_clip_head

    m = _clip_model(2)
    rng = np.random.default_rng(5)
    windows = []
    for i in range(40):
        f = feats(20, 100 + i)
        f[:, :2] += rng.normal(0, 1, 2) + 2.0 * np.array(SIGNS[Q[i % 4]])
        windows.append((f[None], i % 4))
    info = fit_clip_head(m, windows, c=0.1)
    assert info["windows"] == 40 and 0.25 < info["accuracy"] <= 1.0
    with torch.no_grad():
        x = torch.from_numpy(np.stack([w for w, _ in windows]))
        stats = m.clip_statistics(x).double().numpy()
        m(x)
        ours = m.last_quadrant_logits.double().numpy()
    mu, sd = stats.mean(0), stats.std(0)
    ref = LogisticRegression(C=0.1, max_iter=5000).fit((stats - mu) / sd, [q for _, q in windows])
    theirs = ref.decision_function((stats - mu) / sd)
    d = (ours - ours.mean(1, keepdims=True)) - (theirs - theirs.mean(1, keepdims=True))
    assert np.abs(d).max() < 1e-3
    with pytest.raises(ValueError, match="at least 2"):
        fit_clip_head(m, [(w, 0) for w, _ in windows[:5]], c=0.1)


@pytest.mark.parametrize(
    "balance, source_weights, expected",
    [
        (True, None, {"": 0.75, "emopia": 1.5}),  # 4 main windows, 2 EMOPIA: each source weighs 3 in total
        (True, {"emopia": 0.5}, {"": 0.75, "emopia": 0.75}),
        (True, {"main": 0.0}, {"": 0.0, "emopia": 1.5}),
        (False, {"emopia": 2.0}, {"": 1.0, "emopia": 2.0}),
        (False, None, None),
    ],
)
def test_refit_clip_head_weighs_the_sources(monkeypatch, balance, source_weights, expected):
    """``train.clip_fit_balance`` and ``train.clip_fit_weights``: the weight of each listener-labelled window in the
    refit, by source (the main dataset's ids have no prefix, a ``data.also`` entry's ``<dataset>:``); a curve-only
    clip gives no window."""
    import moodscope.models.musicnn_va as mva
    from moodscope.training.fold import refit_clip_head

    seen = {}

    def fake_fit(model, windows, *, c, weights=None):
        seen["weights"], seen["n"] = weights, len(windows)
        return {"windows": len(windows), "accuracy": 1.0}

    monkeypatch.setattr(mva, "fit_clip_head", fake_fit)
    task = MoodTask(MUSICNN_EMBEDDING, tag_names=Q, window_s=10.0, train_hop_s=10.0)
    items = [Item(f"m{i}", feats(20, i), tags=one_hot(Q[i])) for i in range(4)]  # one 10 s window each
    items += [Item(f"emopia:e{i}", feats(20, 10 + i), tags=one_hot(Q[i])) for i in range(2)]
    items.append(Item("synthetic:s0", feats(20, 20), dynamic=np.zeros((20, 2), np.float32)))
    out = refit_clip_head(
        _clip_model(), task, items, c=0.1, balance=balance, seed=0, source_weights=source_weights
    )
    assert seen["n"] == 6 and out["sources"] == {"main": 4, "emopia": 2}
    if expected is None:
        assert seen["weights"] is None
    else:
        assert seen["weights"] == pytest.approx([expected[""]] * 4 + [expected["emopia"]] * 2)


def test_clip_fit_weights_are_checked():
    from moodscope.errors import ConfigError
    from moodscope.training.config import load_config

    assert load_config(None, ["train.clip_fit_weights={emopia: 0.5}"])["train"]["clip_fit_weights"] == {
        "emopia": 0.5
    }
    with pytest.raises(ConfigError, match="train.clip_fit_weights: expected a mapping"):
        load_config(None, ["train.clip_fit_weights={emopia: -1}"])


# ----------------------------------------------------------------------------------------------------
# human-labelled mood tags (AllMusic's moods of 4Q on the default model)


def _mood_windows(n: int = 40):
    """Windows where mood "Tense" follows a feature's spread and "Calm" a feature's mean; "Rare" is noise."""
    rng = np.random.default_rng(9)
    windows, labels = [], []
    for i in range(n):
        f = feats(20, 100 + i)
        tense, calm = i % 2, (i // 2) % 2
        f[:, 2] *= 4.0 if tense else 0.5
        f[:, 3] += -2.0 if calm else 2.0
        windows.append(f[None])
        labels.append([tense, calm, int(rng.random() < 0.2)])
    return windows, np.array(labels)


def test_fit_mood_head_learns_tags_and_predict_reports_them(tmp_path):
    from moodscope.modelfile import load_model, save_model
    from moodscope.models.musicnn_va import fit_mood_head

    m = _clip_model(3)
    windows, labels = _mood_windows()
    info = fit_mood_head(m, windows, labels, ["Tense", "Calm", "Rare"], c=1.0)
    assert info["positives"]["Tense"] == 20 and m.model_args["moods"] == ["Tense", "Calm", "Rare"]
    with torch.no_grad():
        p = torch.cat([m.mood_probabilities(torch.from_numpy(w)[None]) for w in windows]).numpy()
    assert ((p[:, 0] > 0.5) == (labels[:, 0] == 1)).all() and ((p[:, 1] > 0.5) == (labels[:, 1] == 1)).all()
    # probabilities, not scores: the noise tag stays near its rate
    assert abs(p[:, 2].mean() - labels[:, 2].mean()) < 0.1

    task = MoodTask(MUSICNN_EMBEDDING, tag_names=Q, window_s=10.0)
    out = task.predict(m, feats(50, 7))  # 25 s: windows [0, 20) and [30, 50) steps
    assert out.shape == (50, 2 + len(MSD_TAGS) + 3)
    fields = task.result_fields(out, 25.0)
    assert set(fields["extra"]["moods"]) == {"Tense", "Calm", "Rare"}
    assert all(0 <= v <= 1 for v in fields["extra"]["moods"].values())
    # the saved model rebuilds with its mood head and gives the same probabilities
    path = save_model(tmp_path / "m.safetensors", m, MUSICNN_EMBEDDING, info={"task": task.info()})
    m2 = load_model(path).model
    with torch.no_grad():
        x = torch.from_numpy(windows[0])[None]
        assert torch.allclose(m2.mood_probabilities(x), m.mood_probabilities(x), atol=1e-6)


def test_fit_mood_head_refuses_a_tag_on_every_window():
    from moodscope.models.musicnn_va import fit_mood_head

    windows, labels = _mood_windows(8)
    labels[:, 2] = 1
    with pytest.raises(ValueError, match="'Rare' is on in every window"):
        fit_mood_head(_clip_model(4), windows, labels, ["Tense", "Calm", "Rare"], c=1.0)


def test_a_model_without_moods_reports_none(task, model):
    out = task.predict(model, feats(30, 1))
    assert out.shape[1] == 2 + len(MSD_TAGS)
    assert "moods" not in MoodTask(MUSICNN_EMBEDDING, tag_names=Q).result_fields(out, 15.0)["extra"]


def test_clip_level_scale_scales_the_level_not_the_signs():
    """``clip_level_scale=0.5`` (the default model): the curve's mean is half the quadrant probabilities' expected
    sign -- each quadrant's clips at its centre, +-0.5 -- and the movement around it is the GRU's, unchanged."""
    torch.manual_seed(0)
    full = build("musicnn_va", width=0.25, mode_features=False, clip_head=True)
    full.set_input_stats(np.zeros(250, np.float32), np.ones(250, np.float32))
    half = build("musicnn_va", width=0.25, mode_features=False, clip_head=True, clip_level_scale=0.5)
    half.load_state_dict(full.state_dict())
    x = torch.from_numpy(feats(40, 3))[None, None]
    with torch.no_grad():
        y1, y2 = full.eval()(x)[0], half.eval()(x)[0]
    assert torch.allclose(y2.mean(0), 0.5 * y1.mean(0), atol=1e-5)
    assert torch.allclose(y2 - y2.mean(0), y1 - y1.mean(0), atol=1e-5)
    with pytest.raises(ValueError, match="clip_level_scale"):
        build("musicnn_va", clip_head=True, clip_level_scale=0.0)


def test_embedding_relu_reads_the_embedding_after_its_relu_and_leaves_padding_out():
    """``embedding_relu=True`` (the default model): the head reads ``norm(ReLU(embedding))`` -- what MusiCNN's tag
    layer reads -- and the logits and mode columns as before; padding rows stay exactly 0 and out of the
    statistics, and without the flag nothing changes."""
    torch.manual_seed(0)
    plain = build("musicnn_va", width=0.25, mode_features=False, clip_head=True)
    relu = build("musicnn_va", width=0.25, mode_features=False, clip_head=True, embedding_relu=True)
    rng = np.random.default_rng(0)
    mean, std = rng.normal(0, 1, 250).astype(np.float32), rng.uniform(0.5, 2, 250).astype(np.float32)
    for m in (plain, relu):
        m.set_input_stats(mean, std)
    relu.load_state_dict(plain.state_dict())
    plain.eval(), relu.eval()
    x = torch.from_numpy(rng.normal(0, 2, (1, 40, 250)).astype(np.float32))
    x_relu = torch.cat([x[..., :200].clamp_min(0), x[..., 200:]], -1)
    with torch.no_grad():
        z, real = relu.normalised(x)
        expected = plain.norm(x_relu)
        assert torch.allclose(z, expected, atol=1e-5)
        assert (z[..., :200] != plain.norm(x)[..., :200]).any()  # the flag does something
        assert torch.equal(plain.normalised(x)[0], plain.norm(x))  # and without it nothing changes
        assert torch.allclose(relu(x[:, None]), plain(x_relu[:, None]), atol=1e-5)
        # padding with the normalisation mean: zero rows, left out of the window statistics
        padded = torch.cat([x, torch.from_numpy(mean)[None, None].repeat(1, 20, 1)], 1)
        zp, rp = relu.normalised(padded)
        assert torch.equal(zp[:, 40:], torch.zeros(1, 20, 250)) and rp[0, 40:].sum() == 0
        assert torch.allclose(
            relu.clip_statistics(padded[:, None]), relu.clip_statistics(x[:, None]), atol=1e-5
        )


# ----------------------------------------------------------------------------------------------------
# the listeners' movement (musicnn_va movement_past_s, fitted by fit_track_movement)


def test_past_average_is_causal_lagged_and_leaves_padding_out():
    m = build(
        "musicnn_va", width=0.25, mode_features=False, clip_head=True, movement_past_s=1.5, movement_lag_s=0.5
    )
    z = torch.arange(8, dtype=torch.float32)[None, :, None].repeat(1, 1, 250)  # step t holds t
    real = torch.ones(1, 8, 1)
    real[:, 6:] = 0  # two padding steps at the end
    c = m.past_average(z * real, real)[0, :, 0]
    # past 3 steps, 1 step late: t=0 -> [0]; t=1 -> [0]; t=2 -> [0, 1]; t=3 -> [0, 1, 2]; t=4 -> [1, 2, 3] ...
    assert c[:6].tolist() == pytest.approx([0.0, 0.0, 0.5, 1.0, 2.0, 3.0])
    assert c[7].item() == pytest.approx(4.5)  # [4, 5, (6 padding)]: real steps only
    # nothing later than t - lag reaches step t
    z2 = z.clone()
    z2[:, 5:] = 100.0
    assert m.past_average(z2, torch.ones(1, 8, 1))[0, :6, 0].tolist() == pytest.approx([0, 0, 0.5, 1, 2, 3])


def _movement_model():
    torch.manual_seed(0)
    m = build("musicnn_va", width=0.25, mode_features=False, clip_head=True, movement_past_s=4.0)
    m.set_input_stats(np.zeros(250, np.float32), np.ones(250, np.float32))
    return m.eval()


def test_unfitted_track_movement_is_the_identity(task):
    m = _movement_model()
    f = feats(90, 4)
    curve = task.sliding_curve(m, f)
    assert np.allclose(task.predict(m, f)[:, :2], curve, atol=1e-6)  # fitted parts start as the identity
    assert not any(p.requires_grad for p in (m.motion.weight, m.motion_keep, m.domain.weight))


def test_fit_track_movement_recovers_the_movement_keeps_the_mean_and_gates_synthetic_audio():
    from moodscope.models.musicnn_va import fit_track_movement

    m = _movement_model()
    true_w = np.random.default_rng(2).normal(0, 0.01, (2, 250))
    tracks, gate = [], []
    for i in range(30):
        f = feats(80, 10 + i)
        curve = np.random.default_rng(i).normal(0, 0.2, (80, 2))  # a sliding curve unrelated to the listeners
        c, _ = m.track_parts(f)
        target = (
            0.3 + 0.5 * (curve - curve.mean(0)) + c.double().numpy() @ true_w.T
        )  # listeners' level elsewhere
        target[70:] = np.nan  # unlabelled tail
        tracks.append((f, curve, target))
        syn = feats(80, 500 + i)
        syn[:, 5] += 3.0  # "synthetic audio": one feature far off
        gate += [(f, False), (syn, True)]
    info = fit_track_movement(m, tracks, alpha=1e-6, gate=gate)
    assert min(info["r2"]) > 0.99 and info["gate_accuracy"] == 1.0
    assert np.allclose(m.motion_keep.numpy(), 0.5, atol=1e-3)
    assert np.allclose(m.motion.weight.numpy(), true_w, atol=1e-3)
    f, curve, target = tracks[0]
    out = m.track_curve(f, curve)
    ok = ~np.isnan(target).any(1)
    assert np.allclose(out.mean(0), curve.mean(0), atol=1e-9)  # the static point never moves
    assert np.allclose(out[ok] - out[ok].mean(0), target[ok] - target[ok].mean(0), atol=0.02)
    # synthetic audio keeps its sliding curve as it is (the gate is open)
    syn = gate[1][0]
    ungated = 0.5 * (curve - curve.mean(0)) + curve.mean(0)
    assert np.abs(m.track_curve(syn, curve) - curve).max() < 0.01 < np.abs(ungated - curve).max()
    fit_track_movement(m, tracks, alpha=1e-6, gain=2.0)
    assert np.allclose(m.motion.weight.numpy(), 2 * true_w, atol=2e-3)
    with pytest.raises(ValueError, match="no movement part"):
        fit_track_movement(build("musicnn_va", width=0.25, mode_features=False), tracks, alpha=1.0)


def test_a_column_that_barely_moves_in_the_fit_cannot_swing_other_music():
    """A column nearly constant in the training tracks (an embedding unit below its ReLU on all of VGMIDI's
    piano) once got a weight of 1 / its spread (x 10^5): the curves of real recordings, where that unit moves,
    clipped at +-1 and their means -- the static point -- moved. It is standardised by at least
    ``MOVEMENT_SD_FLOOR``: its weight stays of the order of the others'."""
    from moodscope.models.musicnn_va import MOVEMENT_SD_FLOOR, fit_track_movement

    m = _movement_model()
    rng = np.random.default_rng(4)
    tracks = []
    for i in range(20):
        f = feats(80, 40 + i)
        f[:, 7] = 1e-5 * rng.standard_normal(80)  # barely moves here
        c, _ = m.track_parts(f)
        target = 0.05 * c.double().numpy()[:, :2] + 0.02 * rng.standard_normal((80, 2))
        target[:, 0] += (
            2e-6 * f[:, 7]
        )  # a trace of it in the labels, what ridge on standardised columns blows up
        tracks.append((f, np.zeros((80, 2)), target))
    fit_track_movement(m, tracks, alpha=10.0)
    w = np.abs(m.motion.weight.numpy())
    assert w[:, 7].max() < 1.0 / MOVEMENT_SD_FLOOR * w[:, :2].max()
    loud = feats(80, 99)  # music where that unit moves as much as any other
    curve = np.zeros((80, 2))
    out = m.track_curve(loud, curve)
    assert np.abs(out).max() < 0.9 and np.allclose(out.mean(0), 0.0, atol=1e-6)  # float32 movement


def _net_model(members=3):
    torch.manual_seed(0)
    m = build(
        "musicnn_va",
        width=0.25,
        mode_features=False,
        clip_head=True,
        movement_past_s=4.0,
        movement_net=members,
    )
    m.set_input_stats(np.zeros(250, np.float32), np.ones(250, np.float32))
    return m.eval()


def _planted(seed):
    """Features whose column 3 moves slowly, and listeners whose movement is a non-linear function of it now
    (what an 8 s past average sees only late and linearly), at another level per track."""
    rng = np.random.default_rng(seed)
    f = feats(80, seed)
    f[:, 3] = np.cumsum(rng.normal(0, 0.4, 80))
    f[:, 3] = (f[:, 3] - f[:, 3].mean()) / (f[:, 3].std() + 1e-9)
    target = np.stack([np.tanh(f[:, 3]) ** 3, -np.tanh(2 * f[:, 3])], 1) * 0.1 + rng.normal(0, 0.3, 2)
    target[75:] = np.nan  # unlabelled tail
    return f, target


def test_building_a_movement_net_draws_nothing_from_the_training_stream():
    torch.manual_seed(5)
    plain = build("musicnn_va", width=0.25, mode_features=False, clip_head=True, movement_past_s=4.0)
    after_plain = torch.rand(3)
    torch.manual_seed(5)
    net = build(
        "musicnn_va", width=0.25, mode_features=False, clip_head=True, movement_past_s=4.0, movement_net=2
    )
    assert torch.equal(torch.rand(3), after_plain)
    for k, v in plain.state_dict().items():
        assert torch.equal(net.state_dict()[k], v), k
    assert not any(p.requires_grad for p in net.motion_nets.parameters())
    # without a movement part there is nothing for a net to shape
    with pytest.raises(ValueError, match="needs movement_past_s"):
        build("musicnn_va", width=0.25, mode_features=False, movement_net=2)


def test_movement_net_learns_a_movement_the_ridge_cannot_and_keeps_size_and_mean(task):
    from moodscope.models.movement_net import fit_movement_net
    from moodscope.models.musicnn_va import fit_track_movement

    m = _net_model(2)
    train = [_planted(i) for i in range(12)]
    tracks = [(f, np.zeros((80, 2)), y) for f, y in train]
    fit_track_movement(m, tracks, alpha=10.0)
    f, y = _planted(100)  # a track neither fit saw
    ok = ~np.isnan(y).any(1)
    curve = np.random.default_rng(7).normal(0.2, 0.05, (80, 2))
    ridge_only = m.track_curve(f, curve)
    # unfitted members change nothing: the same curve as the model without a net
    plain = build("musicnn_va", width=0.25, mode_features=False, clip_head=True, movement_past_s=4.0).eval()
    plain.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("motion_nets")})
    assert np.array_equal(ridge_only, plain.track_curve(f, curve))
    # (4 seeds, native and ONEDNN_MAX_CPU_ISA=AVX2 alike: net 0.70-0.78 / 0.78-0.88, shaped 0.47-0.49 /
    # 0.59-0.64 against the ridge's 0.00 / 0.16)
    state = torch.get_rng_state()
    info = fit_movement_net(m, [(f_, y_) for f_, y_ in train], seed=3, epochs=15)
    assert torch.equal(torch.get_rng_state(), state)  # the global stream is left as it was
    assert not any(p.requires_grad for p in m.motion_nets.parameters())
    assert info["members"] == 2 and info["tracks"] == 12 and float(m.motion_nets_fitted) == 1.0
    shaped = m.track_curve(f, curve)

    def r(a, b):
        return np.corrcoef(a[ok], b[ok])[0, 1]

    for d in (0, 1):
        e = m.net_movement(f).numpy()[:, d]
        assert r(e, y[:, d]) > 0.6, (d, r(e, y[:, d]))  # the net alone follows the planted movement
        assert r(shaped[:, d], y[:, d]) > r(ridge_only[:, d], y[:, d]) + 0.25
    # the mean (static point, quadrant) never moves, and the movement keeps the ridge part's size
    assert np.allclose(shaped.mean(0), ridge_only.mean(0), atol=1e-6)
    keep = m.motion_keep.numpy()
    ridge_part = ridge_only - ridge_only.mean(0) - keep * (curve - curve.mean(0))
    shaped_part = shaped - shaped.mean(0) - keep * (curve - curve.mean(0))
    assert np.allclose(shaped_part.std(0), ridge_part.std(0), rtol=1e-4)


def test_movement_net_training_is_reproducible_and_survives_the_model_file(tmp_path):
    from moodscope.config import MUSICNN_EMBEDDING
    from moodscope.modelfile import load_model, save_model
    from moodscope.models.movement_net import fit_movement_net

    train = [_planted(i) for i in range(6)]
    a, b = _net_model(2), _net_model(2)
    torch.manual_seed(123)  # the members' training depends on their seeds alone
    fit_movement_net(a, train, seed=1, epochs=2)
    fit_movement_net(b, train, seed=1, epochs=2)
    for k, v in a.state_dict().items():
        assert torch.equal(b.state_dict()[k], v), k
    save_model(tmp_path / "m.safetensors", a, MUSICNN_EMBEDDING)
    back = load_model(tmp_path / "m.safetensors").model
    f, _ = _planted(50)
    curve = np.zeros((80, 2))
    assert np.allclose(back.track_curve(f, curve), a.track_curve(f, curve), atol=1e-7)
    with pytest.raises(ValueError, match="no movement net"):
        fit_movement_net(_movement_model(), train)
    with pytest.raises(ValueError, match="four labelled steps"):
        fit_movement_net(a, [(f, np.full((80, 2), np.nan))])
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        fit_movement_net(a, train, epochs=0)


def test_movement_fit_is_checked():
    from moodscope.errors import ConfigError
    from moodscope.training.config import load_config

    cfg = load_config(None, ["train.movement_fit={alpha: 100, gain: 2, sources: [main], gate: [synthetic]}"])
    assert cfg["train"]["movement_fit"] == {
        "alpha": 100,
        "gain": 2,
        "sources": ["main"],
        "gate": ["synthetic"],
    }
    assert (
        load_config(None, ["train.movement_fit={alpha: 1, net_epochs: 5}"])["train"]["movement_fit"][
            "net_epochs"
        ]
        == 5
    )
    bad_cases = ("{alpha: -1}", "{alpha: 1, colour: red}", "{sources: main}", "{gate: synthetic}", "[1]")
    for bad in bad_cases + ("{net_epochs: 0}", "{net_epochs: 2.5}", "{net_epochs: true}"):
        with pytest.raises(ConfigError, match="train.movement_fit: expected"):
            load_config(None, [f"train.movement_fit={bad}"])


def test_refit_movement_uses_only_the_named_sources(task):
    from moodscope.training.fold import refit_movement

    m = _movement_model()
    curve = np.tile(np.linspace(-0.2, 0.2, 80)[:, None], (1, 2)).astype(np.float32)
    items = [
        Item("piece", feats(80, 1), dynamic=curve),
        Item("vgmidi:p2", feats(80, 4), dynamic=curve[::-1].copy()),
        Item("synthetic:s", feats(80, 2), dynamic=-curve),
        Item("4q:clip", feats(60, 3), tags=one_hot("Q1")),
    ]
    assert refit_movement(m, task, items, alpha=1.0, sources=["main", "vgmidi"])["sources"] == {
        "main": 1,
        "vgmidi": 1,
    }
    out = refit_movement(m, task, items, alpha=1.0, gate=["synthetic"])
    assert out["sources"] == {"main": 1, "vgmidi": 1, "synthetic": 1} and "gate_accuracy" in out
    with pytest.raises(ValueError, match="no training track with a curve"):
        refit_movement(m, task, items, sources=["4q"])
    # a model with a movement net trains it on the same tracks' curves
    n = _net_model(1)
    out = refit_movement(n, task, items, alpha=1.0, sources=["main", "vgmidi"], net_epochs=1, seed=4)
    assert out["net"]["tracks"] == 2 and float(n.motion_nets_fitted) == 1.0
