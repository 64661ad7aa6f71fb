"""Tests of moodscope.metrics: hand-computed values, degenerate cases, validation, losses."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from moodscope.metrics import (
    accuracy,
    ccc,
    evaluate_classes,
    evaluate_dynamic,
    evaluate_static,
    mae,
    multilabel_scores,
    pcc,
    per_song,
    per_tag_scores,
    r2,
    rmse,
    validate,
)
from moodscope.significance import paired_ttest, summarize_folds

REF = np.array([1.0, 2.0, 3.0, 4.0])
EST = np.array([2.0, 2.0, 4.0, 5.0])


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    """No metric may let a warning out (zero variance, sklearn ill-defined scores, scipy)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# --------------------------------------------------------------------------------------------------
# hand-computed values
# --------------------------------------------------------------------------------------------------


def test_hand_computed_regression_values():
    # mean_r = 2.5, mean_e = 3.25
    # r - mean_r = [-1.5, -0.5, 0.5, 1.5];  e - mean_e = [-1.25, -1.25, 0.75, 1.75]
    # cov   = (1.875 + 0.625 + 0.375 + 2.625) / 4 = 5.5 / 4 = 1.375
    # var_r = (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25
    # var_e = (1.5625 + 1.5625 + 0.5625 + 3.0625) / 4 = 1.6875
    # (mean_r - mean_e)^2 = 0.5625
    # ccc = 2 * 1.375 / (1.25 + 1.6875 + 0.5625) = 2.75 / 3.5 = 11 / 14
    assert ccc(REF, EST) == pytest.approx(11 / 14, abs=1e-12)
    # pcc = 1.375 / sqrt(1.25 * 1.6875) = 1.375 / sqrt(135 / 64) = 11 / sqrt(135)
    assert pcc(REF, EST) == pytest.approx(11 / math.sqrt(135), abs=1e-12)
    # e - r = [1, 0, 1, 1] -> mse = 3 / 4
    assert rmse(REF, EST) == pytest.approx(math.sqrt(3) / 2, abs=1e-12)
    assert mae(REF, EST) == pytest.approx(0.75, abs=1e-12)
    # SS_res = 3, SS_tot = 2.25 + 0.25 + 0.25 + 2.25 = 5 -> r2 = 1 - 3/5
    assert r2(REF, EST) == pytest.approx(0.4, abs=1e-12)


def test_symmetry_and_r2_asymmetry():
    assert ccc(EST, REF) == pytest.approx(ccc(REF, EST), abs=1e-15)
    assert pcc(EST, REF) == pytest.approx(pcc(REF, EST), abs=1e-15)
    # r2 with EST as reference: mean 3.25, SS_tot = 4 * 1.6875 = 6.75, SS_res = 3 -> 1 - 3/6.75
    assert r2(EST, REF) == pytest.approx(1 - 3 / 6.75, abs=1e-12)


def test_against_sklearn_and_numpy_on_random_data():
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.normal(size=50)
        y = 0.5 * x + rng.normal(scale=0.7, size=50) + 0.3
        assert r2(x, y) == pytest.approx(r2_score(x, y), abs=1e-12)
        assert rmse(x, y) == pytest.approx(math.sqrt(mean_squared_error(x, y)), abs=1e-12)
        assert mae(x, y) == pytest.approx(mean_absolute_error(x, y), abs=1e-12)
        assert pcc(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)
        cov = np.cov(x, y, ddof=0)[0, 1]
        expected = 2 * cov / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
        assert ccc(x, y) == pytest.approx(expected, abs=1e-12)


def test_perfect_estimate():
    x = np.array([0.1, -0.4, 0.7, 0.2, -0.9])
    assert ccc(x, x) == pytest.approx(1.0, abs=1e-12)
    assert pcc(x, x) == pytest.approx(1.0, abs=1e-12)
    assert rmse(x, x) == 0.0
    assert mae(x, x) == 0.0
    assert r2(x, x) == 1.0


def test_constant_prediction_of_varying_reference():
    ref = np.array([1.0, 2.0, 3.0])
    # at the mean: cov = 0 -> ccc = 0, pcc undefined -> 0; e - r = [1, 0, -1] -> rmse = sqrt(2/3);
    # SS_res = 2 = SS_tot -> r2 = 0
    est = np.full(3, 2.0)
    assert ccc(ref, est) == 0.0
    assert pcc(ref, est) == 0.0
    assert rmse(ref, est) == pytest.approx(math.sqrt(2 / 3), abs=1e-12)
    assert r2(ref, est) == pytest.approx(0.0, abs=1e-12)
    # off the mean: still ccc = 0 (denominator 2/3 + 0 + 9 > 0); SS_res = 16 + 9 + 4 = 29 -> r2 = 1 - 29/2
    est = np.full(3, 5.0)
    assert ccc(ref, est) == 0.0
    assert r2(ref, est) == pytest.approx(1 - 29 / 2, abs=1e-12)


def test_anti_correlated():
    x = np.array([1.0, 2.0, 3.0])
    # mirrored about the same mean: cov = -2/3, var = 2/3 each, mean diff 0 -> ccc = -4/3 / (4/3) = -1
    assert pcc(x, x[::-1]) == pytest.approx(-1.0, abs=1e-12)
    assert ccc(x, x[::-1]) == pytest.approx(-1.0, abs=1e-12)
    # y = -x + 1 = [0, -1, -2]: mean -1, cov = -2/3, var_y = 2/3, (2 - (-1))^2 = 9
    # ccc = (-4/3) / (2/3 + 2/3 + 9) = (-4/3) / (31/3) = -4/31
    y = np.array([0.0, -1.0, -2.0])
    assert pcc(x, y) == pytest.approx(-1.0, abs=1e-12)
    assert ccc(x, y) == pytest.approx(-4 / 31, abs=1e-12)


def test_zero_variance():
    const = np.full(3, 0.1)  # np.mean gives 0.1 + 1.4e-17 and np.var 1.9e-34: must still be "constant"
    assert np.mean(const) != 0.1  # (the premise of this case)
    other = np.full(3, -0.3)
    # both constant and equal: denominator 0 -> ccc defined as 1; pcc undefined -> 0
    assert ccc(const, const.copy()) == 1.0
    assert pcc(const, const.copy()) == 0.0
    assert r2(const, const.copy()) == 1.0
    # both constant, different: ccc = 0 / (0 + 0 + 0.16) = 0
    assert ccc(const, other) == 0.0
    assert pcc(const, other) == 0.0
    assert rmse(const, other) == pytest.approx(0.4, abs=1e-12)
    # constant reference, varying estimate: ccc = 0, pcc = 0, r2 = 0 (sklearn force_finite)
    vary = np.array([0.1, 0.2, 0.0])
    assert ccc(const, vary) == 0.0
    assert pcc(const, vary) == 0.0
    assert r2(const, vary) == 0.0
    # one sample is constant
    assert ccc([0.5], [0.5]) == 1.0
    assert ccc([0.5], [0.0]) == 0.0
    assert pcc([0.5], [0.5]) == 0.0
    assert r2([0.5], [0.5]) == 1.0


def test_accuracy():
    # 3 of 4 equal
    assert accuracy([0, 1, 2, 3], [0, 1, 2, 0]) == 0.75
    assert accuracy(["happy", "sad"], ["happy", "calm"]) == 0.5
    assert evaluate_classes([1, 0, 1], [1, 1, 1]) == {"accuracy": pytest.approx(2 / 3)}


# --------------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------------

ALL_1D = [ccc, pcc, rmse, mae, r2, accuracy]


@pytest.mark.parametrize("fn", ALL_1D)
@pytest.mark.parametrize(
    ("ref", "est", "message"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], "same shape"),
        ([], [], "empty"),
        ([[1.0, 2.0]], [[1.0, 2.0]], "1-D"),
        (5.0, 5.0, "1-D"),
        ([1.0, np.nan], [1.0, 2.0], "reference contains NaN or inf .*index 1"),
        ([1.0, 2.0], [np.inf, 2.0], "estimate contains NaN or inf .*index 0"),
    ],
)
def test_validation_errors(fn, ref, est, message):
    with pytest.raises(ValueError, match=message):
        fn(ref, est)


def test_validate_non_numeric_and_return():
    with pytest.raises(ValueError, match="reference is not numeric"):
        validate(["a", "b"], [1.0, 2.0])
    ref, est = validate([1, 2], (3, 4))
    assert ref.dtype == np.float64 and est.dtype == np.float64
    ref, est = validate(["a", "b"], ["a", "c"], numeric=False)
    assert ref.dtype.kind == "U"


# --------------------------------------------------------------------------------------------------
# per-song averaging and V-A evaluations
# --------------------------------------------------------------------------------------------------


def _songs(seed: int, n_songs: int = 4):
    rng = np.random.default_rng(seed)
    refs, ests = [], []
    for i in range(n_songs):
        n = 20 + 7 * i  # songs of different lengths
        r = np.tanh(rng.normal(size=(n, 2)).cumsum(axis=0) * 0.1)
        refs.append(r)
        ests.append(np.clip(r + rng.normal(scale=0.2, size=(n, 2)), -1, 1))
    return refs, ests


def test_per_song_equals_manual_mean():
    refs, ests = _songs(1)
    for fn in (ccc, pcc, rmse):
        manual = np.mean([fn(r[:, 0], e[:, 0]) for r, e in zip(refs, ests)])
        assert per_song(fn, [r[:, 0] for r in refs], [e[:, 0] for e in ests]) == pytest.approx(
            manual, abs=1e-14
        )
    # per-song averaging is not pooling: pooled RMSE over the concatenation differs
    pooled = rmse(np.concatenate([r[:, 0] for r in refs]), np.concatenate([e[:, 0] for e in ests]))
    assert per_song(rmse, [r[:, 0] for r in refs], [e[:, 0] for e in ests]) != pytest.approx(pooled, abs=1e-9)


def test_per_song_hand_values_and_nan_skipping():
    # song 0: ccc = 11/14 (see above); song 1: perfect -> 1; mean = (11/14 + 1) / 2 = 25/28
    assert per_song(ccc, [REF, [0.0, 1.0]], [EST, [0.0, 1.0]]) == pytest.approx(25 / 28, abs=1e-12)

    def sometimes_nan(r, e):
        return float("nan") if r[0] == 0 else float(r[0])

    assert per_song(sometimes_nan, [[0.0], [1.0], [3.0]], [[0.0], [0.0], [0.0]]) == 2.0
    assert math.isnan(per_song(sometimes_nan, [[0.0]], [[0.0]]))


def test_per_song_errors_name_the_song():
    with pytest.raises(ValueError, match=r"song 1: reference and estimate must have the same shape"):
        per_song(ccc, [[1.0, 2.0], [1.0, 2.0, 3.0]], [[1.0, 2.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match=r"song 0: estimate contains NaN"):
        per_song(ccc, [[1.0, 2.0]], [[np.nan, 2.0]])
    with pytest.raises(ValueError, match="2 reference songs but 1 estimated"):
        per_song(ccc, [[1.0], [2.0]], [[1.0]])
    with pytest.raises(ValueError, match="no songs"):
        per_song(ccc, [], [])


def test_evaluate_dynamic():
    refs, ests = _songs(2)
    scores = evaluate_dynamic(refs, ests)
    assert list(scores) == [
        "valence_ccc",
        "valence_pcc",
        "valence_rmse",
        "arousal_ccc",
        "arousal_pcc",
        "arousal_rmse",
        "valence_pooled_ccc",
        "valence_pooled_pcc",
        "valence_static_pcc",
        "arousal_pooled_ccc",
        "arousal_pooled_pcc",
        "arousal_static_pcc",
    ]
    for j, dim in enumerate(("valence", "arousal")):
        for name, fn in (("ccc", ccc), ("pcc", pcc), ("rmse", rmse)):
            manual = np.mean([fn(r[:, j], e[:, j]) for r, e in zip(refs, ests)])
            assert scores[f"{dim}_{name}"] == pytest.approx(manual, abs=1e-14)
        pooled = ccc(np.concatenate([r[:, j] for r in refs]), np.concatenate([e[:, j] for e in ests]))
        assert scores[f"{dim}_pooled_ccc"] == pytest.approx(pooled, abs=1e-14)
        static = pcc([r[:, j].mean() for r in refs], [e[:, j].mean() for e in ests])
        assert scores[f"{dim}_static_pcc"] == pytest.approx(static, abs=1e-14)
    assert math.isnan(
        evaluate_dynamic(refs[:2], ests[:2])["valence_static_pcc"]
    )  # a correlation of two points
    perfect = evaluate_dynamic(refs, refs)
    assert perfect["valence_ccc"] == pytest.approx(1.0) and perfect["arousal_rmse"] == 0.0


def test_evaluate_dynamic_separates_level_from_movement():
    """A curve at each song's right level that does not move: per-song PCC 0, static PCC 1; a curve that moves
    exactly with the listeners around the wrong level: per-song PCC 1, static PCC low."""
    rng = np.random.default_rng(0)
    levels = rng.uniform(-0.5, 0.5, size=(6, 2))
    refs = [lv + 0.05 * rng.standard_normal((40, 2)) for lv in levels]
    flat = [np.tile(r.mean(0), (len(r), 1)) for r in refs]
    s = evaluate_dynamic(refs, flat)
    for dim in ("valence", "arousal"):
        assert s[f"{dim}_pcc"] == 0.0 and s[f"{dim}_static_pcc"] == pytest.approx(1.0)
        assert s[f"{dim}_pooled_pcc"] > 0.9  # pooled figures are dominated by the levels
    moving = [r - r.mean(0) for r in refs]  # the movement, every song at level 0
    s = evaluate_dynamic(refs, moving)
    for dim in ("valence", "arousal"):
        assert s[f"{dim}_pcc"] == pytest.approx(1.0) and abs(s[f"{dim}_static_pcc"]) < 0.9
        assert s[f"{dim}_pooled_pcc"] < 0.5


def test_evaluate_dynamic_errors():
    good = np.zeros((5, 2))
    with pytest.raises(ValueError, match=r"song 1: estimate must have shape \(n, 2\), got \(5, 3\)"):
        evaluate_dynamic([good, good], [good, np.zeros((5, 3))])
    with pytest.raises(ValueError, match=r"song 0: reference and estimate must have the same shape"):
        evaluate_dynamic([good], [np.zeros((4, 2))])
    with pytest.raises(ValueError, match="song 0: reference and estimate are empty"):
        evaluate_dynamic([np.zeros((0, 2))], [np.zeros((0, 2))])


def test_evaluate_static():
    ref = np.c_[REF, EST]
    est = np.c_[EST, REF]
    scores = evaluate_static(ref, est)
    assert list(scores) == ["valence_r2", "valence_rmse", "arousal_r2", "arousal_rmse"]
    assert scores["valence_r2"] == pytest.approx(0.4)  # hand-computed above
    assert scores["arousal_r2"] == pytest.approx(1 - 3 / 6.75)
    assert scores["valence_rmse"] == pytest.approx(math.sqrt(3) / 2)
    assert scores["arousal_rmse"] == pytest.approx(math.sqrt(3) / 2)
    with pytest.raises(ValueError, match=r"reference must have shape \(n, 2\), got \(4,\)"):
        evaluate_static(REF, EST)
    with pytest.raises(ValueError, match="estimate contains NaN"):
        evaluate_static(ref, np.where(ref > 3, np.nan, ref))


# --------------------------------------------------------------------------------------------------
# multi-label
# --------------------------------------------------------------------------------------------------

Y_TRUE = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
Y_SCORE = np.array([[0.9, 0.2], [0.6, 0.7], [0.4, 0.8], [0.1, 0.6]])


def test_multilabel_hand_checked():
    # threshold 0.5 -> predicted [[1,0],[1,1],[0,1],[0,1]]
    # tag0: true [1,0,1,0], pred [1,1,0,0]: TP 1, FP 1, FN 1 -> P .5, R .5, F1 .5
    # tag1: true [0,1,1,0], pred [0,1,1,1]: TP 2, FP 1, FN 0 -> P 2/3, R 1, F1 .8
    # micro: TP 3, FP 2, FN 1 -> P 3/5, R 3/4, F1 6/9
    # ROC-AUC tag0: pos {.9,.4} vs neg {.6,.1}: 3 of 4 pairs ordered -> .75
    # ROC-AUC tag1: pos {.7,.8} vs neg {.2,.6}: 4 of 4 -> 1
    # micro ROC-AUC: pos {.9,.4,.7,.8} vs neg {.2,.6,.1,.6}: 4 + 2 + 4 + 4 = 14 of 16 pairs
    # AP tag0: ranking .9+ .6- .4+ .1- -> .5 * 1 + .5 * 2/3 = 5/6; tag1: .8+ .7+ -> 1
    # micro AP: .9+ .8+ .7+ .6- .6- .4+ -> (1 + 1 + 1 + 4/6) / 4 = 11/12
    s = multilabel_scores(Y_TRUE, Y_SCORE)
    expected = {
        "precision_micro": 3 / 5,
        "precision_macro": (0.5 + 2 / 3) / 2,
        "recall_micro": 3 / 4,
        "recall_macro": (0.5 + 1) / 2,
        "f1_micro": 2 / 3,
        "f1_macro": (0.5 + 0.8) / 2,
        "roc_auc_micro": 14 / 16,
        "roc_auc_macro": (0.75 + 1) / 2,
        "pr_auc_micro": 11 / 12,
        "pr_auc_macro": (5 / 6 + 1) / 2,
        "n_tags_auc": 2,
        "n_tags_skipped_auc": 0,
    }
    assert list(s) == list(expected)
    for k, v in expected.items():
        assert s[k] == pytest.approx(v, abs=1e-12), k


def test_multilabel_single_class_tag_is_skipped_for_auc():
    # tag2 is never true and never predicted (scores .1 < .5):
    # micro P/R/F1 unchanged (no TP/FP/FN); macro adds P = R = F1 = 0 (zero_division=0) for tag2
    # macro AUC/AP skip tag2; micro ROC-AUC pools 4 more negatives at .1:
    #   pos {.9,.8,.7} beat all 8 negatives, .4 beats {.2,.1,.1,.1,.1,.1} -> (24 + 6) / 32
    # micro AP: ranking of positives unchanged -> 11/12
    y_true = np.c_[Y_TRUE, np.zeros(4)]
    y_score = np.c_[Y_SCORE, np.full(4, 0.1)]
    s = multilabel_scores(y_true, y_score)
    assert s["precision_micro"] == pytest.approx(3 / 5)
    assert s["f1_micro"] == pytest.approx(2 / 3)
    assert s["precision_macro"] == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert s["recall_macro"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert s["f1_macro"] == pytest.approx((0.5 + 0.8 + 0) / 3)
    assert s["roc_auc_macro"] == pytest.approx(0.875)
    assert s["pr_auc_macro"] == pytest.approx(11 / 12)
    assert s["roc_auc_micro"] == pytest.approx(30 / 32)
    assert s["pr_auc_micro"] == pytest.approx(11 / 12)
    assert s["n_tags_auc"] == 2 and s["n_tags_skipped_auc"] == 1

    tags = per_tag_scores(y_true, y_score, tags=["happy", "sad", "angry"])
    assert list(tags) == ["happy", "sad", "angry"]
    assert math.isnan(tags["angry"]["roc_auc"]) and math.isnan(tags["angry"]["pr_auc"])
    assert tags["angry"]["support"] == 0


def test_multilabel_all_tags_single_class():
    s = multilabel_scores(np.zeros((3, 2)), np.full((3, 2), 0.2))
    assert math.isnan(s["roc_auc_macro"]) and math.isnan(s["roc_auc_micro"])
    assert math.isnan(s["pr_auc_macro"]) and math.isnan(s["pr_auc_micro"])
    assert s["n_tags_skipped_auc"] == 2 and s["f1_micro"] == 0.0


def test_per_tag_scores_hand_checked():
    tags = per_tag_scores(Y_TRUE, Y_SCORE)
    assert list(tags) == ["tag0", "tag1"]
    expected = {
        "tag0": dict(precision=0.5, recall=0.5, f1=0.5, roc_auc=0.75, pr_auc=5 / 6, support=2),
        "tag1": dict(precision=2 / 3, recall=1.0, f1=0.8, roc_auc=1.0, pr_auc=1.0, support=2),
    }
    for tag, vals in expected.items():
        assert list(tags[tag]) == list(vals)
        for k, v in vals.items():
            assert tags[tag][k] == pytest.approx(v, abs=1e-12), (tag, k)


def test_per_tag_threshold():
    # tag1 at threshold .75: pred [0,0,1,0] vs true [0,1,1,0] -> TP 1, FP 0, FN 1 -> P 1, R .5, F1 2/3
    tags = per_tag_scores(Y_TRUE, Y_SCORE, threshold=[0.5, 0.75])
    assert (tags["tag1"]["precision"], tags["tag1"]["recall"]) == (1.0, 0.5)
    assert tags["tag1"]["f1"] == pytest.approx(2 / 3)
    assert tags["tag0"]["f1"] == 0.5
    # a score equal to the threshold counts as predicted
    assert per_tag_scores(Y_TRUE, Y_SCORE, threshold=0.9)["tag0"]["precision"] == 1.0
    s = multilabel_scores(Y_TRUE, Y_SCORE, threshold=np.array([0.5, 0.75]))
    # micro: tag0 TP 1 FP 1 FN 1, tag1 TP 1 FP 0 FN 1 -> P 2/3, R 2/4
    assert s["precision_micro"] == pytest.approx(2 / 3)
    assert s["recall_micro"] == pytest.approx(0.5)
    # score == threshold is predicted: at .9 only item 0 is predicted for tag0 (a TP), nothing for tag1
    assert multilabel_scores(Y_TRUE, Y_SCORE, threshold=0.9)["precision_micro"] == 1.0


@pytest.mark.parametrize(
    ("y_true", "y_score", "threshold", "message"),
    [
        (Y_TRUE, Y_SCORE[:3], 0.5, "same shape"),
        (Y_TRUE[:, 0], Y_SCORE[:, 0], 0.5, r"shape \(n, k\)"),
        (Y_TRUE * 2, Y_SCORE, 0.5, "only 0 and 1"),
        (Y_TRUE, np.where(Y_SCORE > 0.8, np.nan, Y_SCORE), 0.5, "estimate contains NaN"),
        (Y_TRUE, Y_SCORE, [0.5, 0.5, 0.5], r"threshold must be a scalar or have shape \(2,\)"),
        (np.zeros((0, 2)), np.zeros((0, 2)), 0.5, "empty"),
    ],
)
def test_multilabel_validation(y_true, y_score, threshold, message):
    with pytest.raises(ValueError, match=message):
        multilabel_scores(y_true, y_score, threshold=threshold)
    with pytest.raises(ValueError, match=message):
        per_tag_scores(y_true, y_score, threshold=threshold)


def test_per_tag_names_length():
    with pytest.raises(ValueError, match="got 1 tag names for 2 tags"):
        per_tag_scores(Y_TRUE, Y_SCORE, tags=["happy"])


# --------------------------------------------------------------------------------------------------
# folds and significance
# --------------------------------------------------------------------------------------------------


def test_summarize_folds():
    folds = [{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 2.0}, {"b": 5.0, "a": 5.0}]
    s = summarize_folds(folds)
    assert list(s) == ["a", "b"]
    # a: mean 3, std = sqrt((4 + 0 + 4) / 2) = 2;  b: mean 3, std = sqrt((1 + 1 + 4) / 2) = sqrt(3)
    assert s["a"] == pytest.approx((3.0, 2.0))
    assert s["b"] == pytest.approx((3.0, math.sqrt(3)))
    assert summarize_folds([{"a": 0.7}]) == {"a": (0.7, 0.0)}


def test_summarize_folds_errors():
    with pytest.raises(ValueError, match="no folds"):
        summarize_folds([])
    with pytest.raises(ValueError, match=r"fold 1 does not have the same score names .*\['b'\]"):
        summarize_folds([{"a": 1.0}, {"a": 1.0, "b": 2.0}])
    with pytest.raises(ValueError, match="score 'a' is not numeric"):
        summarize_folds([{"a": "x"}])


def test_paired_ttest():
    # d = a - b = [1, 0, 2, 2]: mean 1.25, sample var = (.0625 + 1.5625 + .5625 + .5625) / 3 = 2.75 / 3
    # t = 1.25 / sqrt(2.75 / 3 / 4)
    from scipy import stats

    t, p = paired_ttest([1.0, 2.0, 3.0, 4.0], [0.0, 2.0, 1.0, 2.0])
    t_hand = 1.25 / math.sqrt(2.75 / 3 / 4)
    assert t == pytest.approx(t_hand, abs=1e-12)
    assert p == pytest.approx(2 * stats.t.sf(t_hand, df=3), abs=1e-12)
    assert all(math.isnan(v) for v in paired_ttest([0.5], [0.4]))
    assert all(math.isnan(v) for v in paired_ttest([0.5, 0.6], [0.5, 0.6]))  # all differences 0
    assert paired_ttest([1.0, 2.0, 3.0], [0.0, 1.0, 2.0]) == (math.inf, 0.0)  # all differences 1, no warning
    with pytest.raises(ValueError, match="same shape"):
        paired_ttest([1.0, 2.0], [1.0])


# --------------------------------------------------------------------------------------------------
# torch losses
# --------------------------------------------------------------------------------------------------


def _batch(seed: int, shape=(4, 60)):
    g = torch.Generator().manual_seed(seed)
    target = torch.randn(shape, generator=g, dtype=torch.float64)
    pred = 0.6 * target + 0.5 * torch.randn(shape, generator=g, dtype=torch.float64) + 0.2
    return pred, target
