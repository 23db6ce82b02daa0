"""Metrics: macro-F1 vs sklearn on the classes present in the truth, P10, hand-checked OA/mIoU, AUC vs pairwise counts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from alise.errors import AliseError
from alise.metrics import (
    change_detection_metrics,
    confusion_matrix,
    mean_std,
    metrics_from_confusion,
    segmentation_metrics,
)


def _sklearn_macro_f1(t, p, ignore):
    """Reference: evaluated pixels = truth not ignored / not negative; average over present truth classes."""
    keep = (t >= 0) & ~np.isin(t, ignore)
    t, p = t[keep], p[keep]
    present = sorted(set(t.tolist()))
    return f1_score(t, p, labels=present, average="macro", zero_division=0.0), present


def test_confusion_matrix_counts_rows_truth():
    t = np.array([[0, 1], [2, 2]])
    p = np.array([[0, 2], [2, 1]])
    cm = confusion_matrix(t, p, 3)
    assert cm.dtype == np.int64
    assert cm.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    # valid mask and negative truth (ignore_index) drop pixels
    cm = confusion_matrix(torch.tensor([[0, -100], [2, 2]]), torch.tensor(p), 3, valid=np.array([[True, True], [False, True]]))
    assert cm.tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 0]]


@pytest.mark.parametrize("case", ["missing_in_pred", "missing_in_truth", "ignored_predicted", "random"])
def test_macro_f1_matches_sklearn_on_present_classes(case):
    rng = np.random.default_rng(3)
    k = 6
    t = rng.integers(0, k, size=(4, 8, 8))
    p = rng.integers(0, k, size=(4, 8, 8))
    if case == "missing_in_pred":
        p[p == 3] = 4  # class 3 never predicted → its F1 is 0 and counts
    elif case == "missing_in_truth":
        t[t == 5] = 2  # class 5 absent from truth → not averaged even though it is predicted
    elif case == "ignored_predicted":
        p[:, :4] = 0  # many labelled pixels predicted as the ignored background
    t[0, 0, :3] = -100  # ignore_index pixels
    out = segmentation_metrics(t, p, k, ignore=(0,))
    ref, present = _sklearn_macro_f1(t, p, [0])
    assert out["classes"] == present
    assert 0 not in out["classes"]
    assert out["macro_f1"] == pytest.approx(ref, abs=1e-12)
    if case == "missing_in_truth":
        assert 5 not in out["per_class_f1"]
    if case == "missing_in_pred":
        assert out["per_class_f1"][3] == 0.0
    json.dumps(out)  # plain Python types


def test_p10_ignored_class_prediction_is_an_error_not_an_extra_class():
    # truth: 2 pixels of class 1, 2 of class 2, 2 background; predictions put background on class-1 pixels
    t = np.array([1, 1, 2, 2, 0, 0])
    p = np.array([0, 1, 2, 2, 1, 0])
    out = segmentation_metrics(t, p, 3, ignore=(0,))
    # class 1: TP 1, FN 1 (predicted 0), FP 0 (the background pixel predicted 1 is not evaluated) → 2/3
    # class 2: perfect → 1
    assert out["per_class_f1"] == {1: pytest.approx(2 / 3), 2: 1.0}
    assert out["macro_f1"] == pytest.approx((2 / 3 + 1) / 2)
    assert out["n_pixels"] == 4
    assert out["overall_accuracy"] == pytest.approx(3 / 4)


def test_void_label_beyond_num_classes_is_ignored():
    t = np.array([19, 19, 1, 2])
    p = np.array([3, 4, 1, 1])
    out = segmentation_metrics(t, p, 19, ignore=(0, 19))
    assert out["n_pixels"] == 2
    with pytest.raises(AliseError, match="num_classes"):
        segmentation_metrics(t, p, 19, ignore=(0,))


def test_overall_accuracy_and_miou_by_hand():
    # truth   1 1 1 2 2 3 ; pred 1 1 2 2 3 3
    t = np.array([1, 1, 1, 2, 2, 3])
    p = np.array([1, 1, 2, 2, 3, 3])
    out = segmentation_metrics(t, p, 4, ignore=(0,), class_names=["bg", "a", "b", "c"])
    # class a: TP2 FP0 FN1 → IoU 2/3, F1 4/5; b: TP1 FP1 FN1 → 1/3, 1/2; c: TP1 FP1 FN0 → 1/2, 2/3
    assert out["overall_accuracy"] == pytest.approx(4 / 6)
    assert out["miou"] == pytest.approx((2 / 3 + 1 / 3 + 1 / 2) / 3)
    assert out["per_class_f1"] == pytest.approx({"a": 0.8, "b": 0.5, "c": 2 / 3})
    assert out["class_names"] == ["a", "b", "c"]
    assert out["confusion"][1] == [0, 2, 1, 0]


def test_metrics_from_summed_confusion_equal_whole_set():
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 5, 400), rng.integers(0, 5, 400)
    cm = confusion_matrix(t[:150], p[:150], 5) + confusion_matrix(t[150:], p[150:], 5)
    assert metrics_from_confusion(cm) == segmentation_metrics(t, p, 5)


def test_segmentation_errors_speak():
    with pytest.raises(AliseError, match="no labelled pixel"):
        segmentation_metrics(np.zeros(4, int), np.zeros(4, int), 3)
    with pytest.raises(AliseError, match="outside"):
        segmentation_metrics(np.ones(4, int), np.full(4, 7), 3)
    with pytest.raises(AliseError, match="class names"):
        segmentation_metrics(np.ones(4, int), np.ones(4, int), 3, class_names=["a"])


def _pairwise_auc(score, change):
    pos, neg = score[change == 1], score[change == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (pos.size * neg.size)


def test_auc_matches_pairwise_count_with_ties_valid_and_nan():
    rng = np.random.default_rng(1)
    change = rng.integers(0, 2, size=(20, 20))
    score = np.round(rng.normal(size=(20, 20)) + 0.8 * change, 1)  # rounding creates ties
    valid = rng.random((20, 20)) > 0.2
    score[0, :5] = np.nan
    out = change_detection_metrics(torch.tensor(score), change, valid)
    keep = valid & np.isfinite(score)
    assert out["auc"] == pytest.approx(_pairwise_auc(score[keep], change[keep]), abs=1e-12)
    assert out["n_pixels"] == keep.sum()
    assert out["n_excluded_nonfinite"] == int((valid & ~np.isfinite(score)).sum())
    assert out["fpr"][0] == 0.0 and out["fpr"][-1] == 1.0 and out["tpr"][-1] == 1.0
    json.dumps(out)


def test_auc_curve_is_subsampled_and_one_class_is_an_error():
    rng = np.random.default_rng(2)
    change = rng.integers(0, 2, 5000)
    out = change_detection_metrics(rng.random(5000) + change, change)
    assert len(out["fpr"]) <= 201 and np.all(np.diff(out["fpr"]) >= 0)
    assert out["auc"] > 0.9
    with pytest.raises(AliseError, match="both changed and unchanged"):
        change_detection_metrics(np.arange(4.0), np.ones(4))


def test_mean_std_population_std():
    out = mean_std([0.4, 0.5, 0.6])
    assert out["mean"] == pytest.approx(0.5)
    assert out["std"] == pytest.approx(np.sqrt(0.02 / 3))
    assert out["n"] == 3 and out["values"] == [0.4, 0.5, 0.6]
    with pytest.raises(AliseError):
        mean_std([])


def test_nyquist_share_tells_a_checkerboard_from_a_smooth_map():
    from alise.metrics import nyquist_share

    yy, xx = np.mgrid[:32, :32]
    checker = ((yy + xx) % 2).astype(float)[None]
    smooth = np.sin(xx / 6.0)[None] + np.cos(yy / 9.0)[None]
    noise = np.random.default_rng(0).normal(size=(8, 32, 32))
    assert nyquist_share(checker) == pytest.approx(1.0)
    assert nyquist_share(smooth) < 0.01
    assert nyquist_share(noise) == pytest.approx((32 + 32 - 1) / 32 ** 2, rel=0.2)
    assert nyquist_share(np.ones((2, 8, 8))) == 0.0
