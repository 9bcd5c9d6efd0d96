"""Threshold calibration from held-out normals and from validation sets with anomalies."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from mama_monai.evaluation import Threshold, best_f1_threshold, calibrate_threshold, image_metrics, youden_threshold
from mama_monai.evaluation import thresholds as thresholds_module


def test_calibrated_threshold_is_the_normal_quantile_with_its_method_name():
    t = calibrate_threshold(np.arange(101.0), quantile=0.9)
    assert t == Threshold(90.0, "normal_quantile_0.9")
    assert t._asdict() == {"value": 90.0, "method": "normal_quantile_0.9"}


def test_calibrated_threshold_flags_about_five_percent_of_normals():
    normals = np.random.default_rng(0).normal(size=2000)
    value, method = calibrate_threshold(normals)
    assert method == "normal_quantile_0.95"
    assert np.mean(normals >= value) == pytest.approx(0.05, abs=0.002)


@pytest.mark.parametrize("quantile", [0.0, -0.1, 1.5, True])
def test_calibrate_threshold_rejects_quantile_outside_unit_interval(quantile):
    with pytest.raises(ValueError, match="quantile"):
        calibrate_threshold([0.1, 0.2], quantile=quantile)


def test_best_f1_threshold_on_a_separable_set_gives_perfect_f1():
    s = np.array([0.1, 0.3, 0.2, 0.25, 0.8, 0.6, 0.7])
    y = np.array([0, 0, 0, 0, 1, 1, 1])
    t = best_f1_threshold(s, y)
    assert t == Threshold(0.6, "best_f1")
    assert image_metrics(s, y, t.value)["f1"] == 1.0


def test_youden_threshold_on_a_separable_set_gives_perfect_sensitivity_and_specificity():
    s = np.array([0.1, 0.3, 0.2, 0.8, 0.6, 0.7])
    y = np.array([0, 0, 0, 1, 1, 1])
    t = youden_threshold(s, y)
    assert t.method == "youden"
    m = image_metrics(s, y, t.value)
    assert (m["sensitivity"], m["specificity"]) == (1.0, 1.0)


def _f1_and_j(s, y, t):
    pred = s >= t
    tp, fp = np.sum(pred & (y == 1)), np.sum(pred & (y == 0))
    fn, tn = np.sum(~pred & (y == 1)), np.sum(~pred & (y == 0))
    return 2 * tp / (2 * tp + fp + fn), tp / (tp + fn) + tn / (tn + fp) - 1


def test_validation_thresholds_maximise_their_criterion_on_overlapping_scores():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    s = rng.normal(size=300) + y
    best_f1 = _f1_and_j(s, y, best_f1_threshold(s, y).value)[0]
    best_j = _f1_and_j(s, y, youden_threshold(s, y).value)[1]
    f1s, js = zip(*(_f1_and_j(s, y, t) for t in s))
    assert best_f1 == pytest.approx(max(f1s))
    assert best_j == pytest.approx(max(js))


@pytest.mark.parametrize("fn", [best_f1_threshold, youden_threshold])
def test_validation_thresholds_refuse_a_single_class(fn):
    with pytest.raises(ValueError, match="labels must contain both"):
        fn([0.1, 0.2, 0.3], [0, 0, 0])


def test_docstring_examples_run():
    assert doctest.testmod(thresholds_module, extraglobs={"np": np}).failed == 0


def test_known_answers_at_the_edges_of_the_rules():
    # the normal scores are named in the error
    with pytest.raises(ValueError, match=r"^normal_scores must be finite"):
        calibrate_threshold([0.1, float("nan")])
    # F1 = 0.5 at precision = recall = 0.5 (p + r = 1) beats 1/3 further down; a point with no
    # true positive (p + r = 0) scores 0, not nan
    scores = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    labels = [0, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert best_f1_threshold(scores, labels).value == 0.9
    assert best_f1_threshold([0.9, 0.1], [0, 1]).value == 0.1
    # Youden: every ROC point is a candidate, ties go to the highest: J = 0 at 0.9 and at 0.8
    assert youden_threshold([0.9, 0.9, 0.8, 0.8], [1, 0, 1, 0]).value == 0.9
