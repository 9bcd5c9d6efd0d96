"""Image-level metrics, Eq. 14 normality and the bootstrap AUROC interval."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from mama_monai.evaluation import AurocInterval, bootstrap_auroc_ci, image_metrics, normality_scores
from mama_monai.evaluation import metrics as metrics_module

# 10 cases, threshold 0.5: tp = 3 (0.9, 0.8, 0.6), fn = 1 (0.4), fp = 2 (0.7, 0.5), tn = 4.
SCORES = np.array([0.9, 0.8, 0.6, 0.4, 0.7, 0.5, 0.3, 0.2, 0.1, 0.0])
LABELS = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])


def test_confusion_matrix_metrics_match_hand_computed_values():
    m = image_metrics(SCORES, LABELS, threshold=0.5)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (3, 2, 4, 1)
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(3 / 5)
    assert m["f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert (m["n_normal"], m["n_anomalous"], m["threshold"]) == (6, 4, 0.5)


def test_score_equal_to_threshold_is_called_anomalous():
    m = image_metrics([0.5, 0.5], [1, 0], threshold=0.5)
    assert (m["tp"], m["fp"]) == (1, 1)


def test_auroc_and_average_precision_match_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    s = rng.normal(size=200) + y
    m = image_metrics(s, y, threshold=0.0)
    assert m["auroc"] == pytest.approx(roc_auc_score(y, s))
    assert m["average_precision"] == pytest.approx(average_precision_score(y, s))


def test_metrics_are_plain_python_numbers():
    m = image_metrics(SCORES, LABELS, threshold=0.5)
    assert all(type(v) in (int, float) for v in m.values())


def test_single_class_gives_nan_auroc_with_warning_and_keeps_specificity():
    with pytest.warns(UserWarning, match="only one class"):
        m = image_metrics([0.1, 0.2, 0.9], [0, 0, 0], threshold=0.5)
    assert math.isnan(m["auroc"]) and math.isnan(m["average_precision"])
    assert math.isnan(m["sensitivity"])
    assert m["specificity"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "scores, labels, threshold, match",
    [
        ([0.1, 0.2], [0, 1, 1], 0.5, "labels"),
        ([0.1, 0.2], [0, 2], 0.5, "labels"),
        ([0.1, float("nan")], [0, 1], 0.5, "scores"),
        ([], [], 0.5, "scores"),
        ([[0.1, 0.2]], [0, 1], 0.5, "scores"),
        ([0.1, 0.2], [0, 1], float("nan"), "threshold"),
    ],
)
def test_image_metrics_rejects_bad_input(scores, labels, threshold, match):
    with pytest.raises(ValueError, match=match):
        image_metrics(scores, labels, threshold)


def test_normality_scores_follow_eq14_on_a_known_set():
    np.testing.assert_allclose(normality_scores([2.0, 4.0, 3.0, 6.0]), [1.0, 0.5, 0.75, 0.0])


def test_normality_scores_of_a_constant_set_are_all_one():
    np.testing.assert_array_equal(normality_scores([0.3, 0.3, 0.3]), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(normality_scores([0.7]), [1.0])


def test_normality_scores_reject_non_finite_errors():
    with pytest.raises(ValueError, match="errors"):
        normality_scores([0.1, float("inf")])


def test_bootstrap_ci_contains_point_estimate_and_is_deterministic():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(40, int), np.ones(15, int)]
    s = rng.normal(size=55) + 1.2 * y
    ci = bootstrap_auroc_ci(s, y, n=300, seed=7)
    assert isinstance(ci, AurocInterval)
    assert ci.auroc == pytest.approx(roc_auc_score(y, s))
    assert 0.0 <= ci.low <= ci.auroc <= ci.high <= 1.0
    assert ci.high - ci.low > 0.0
    assert bootstrap_auroc_ci(s, y, n=300, seed=7) == ci
    assert bootstrap_auroc_ci(s, y, n=300, seed=8) != ci
    assert ci._asdict()["n_bootstrap"] == 300


def test_bootstrap_auroc_of_a_tied_set_matches_sklearn():
    assert metrics_module._auroc_mann_whitney(np.array([0.5, 0.7]), np.array([0.5, 0.1])) == pytest.approx(
        roc_auc_score([1, 1, 0, 0], [0.5, 0.7, 0.5, 0.1])
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [({"labels": [0, 0, 0, 0]}, "labels"), ({"n": 0}, "n must"), ({"alpha": 1.5}, "alpha"), ({"n": 2.5}, "n must")],
)
def test_bootstrap_rejects_bad_input(kwargs, match):
    args = {"scores": [0.1, 0.2, 0.3, 0.4], "labels": [0, 0, 1, 1], **kwargs}
    with pytest.raises(ValueError, match=match):
        bootstrap_auroc_ci(**args)


def test_docstring_examples_run():
    assert doctest.testmod(metrics_module).failed == 0


def test_known_answers_by_hand_auroc_ap_operating_point_and_thresholds():
    from mama_monai.evaluation import best_f1_threshold, calibrate_threshold, youden_threshold

    # positives 0.9 0.8 0.6 0.4, normals 0.7 0.5 0.3 0.2 0.1 0.0. AUROC = pairs ranked right / 24:
    # 0.9 and 0.8 beat all 6 normals, 0.6 beats 5, 0.4 beats 4 -> 21 / 24
    m = image_metrics(SCORES, LABELS, threshold=0.5)
    assert m["auroc"] == pytest.approx(21 / 24)
    # AP: precision at each positive in score order: 1/1, 2/2, 3/4, 4/6
    assert m["average_precision"] == pytest.approx((1 + 1 + 3 / 4 + 4 / 6) / 4)
    # F1 by threshold: 0.9: 2/5, 0.8: 4/6, 0.7: 4/7, 0.6: 6/8, 0.5: 6/9, 0.4: 8/10 (best), 0.3: 8/11
    assert best_f1_threshold(SCORES, LABELS).value == 0.4
    # Youden's J = sens - fpr: 0.8: 0.5, 0.6: 3/4 - 1/6, 0.4: 1 - 2/6 (best), 0.3: 1 - 3/6
    assert youden_threshold(SCORES, LABELS).value == 0.4
    # normals sorted 0 .1 .2 .3 .5 .7: the 0.8 quantile is at position 5 * 0.8 = 4 -> 0.5
    t = calibrate_threshold(SCORES[LABELS == 0], quantile=0.8)
    assert t.value == 0.5
    at = image_metrics(SCORES, LABELS, threshold=t.value)
    assert (at["sensitivity"], at["specificity"], at["f1"]) == (3 / 4, 4 / 6, 6 / 9)
    # where best F1 and Youden disagree: 0.6 0.35 anomalous, 0.5 0.3 0.2 normal
    s, y = [0.6, 0.35, 0.5, 0.3, 0.2], [1, 1, 0, 0, 0]
    # F1: 0.6: 2/3, 0.5: 2/4, 0.35: 4/5 (best); J: 0.6: 1/2, 0.35: 1 - 1/3 (best) -> both 0.35
    assert best_f1_threshold(s, y).value == 0.35 and youden_threshold(s, y).value == 0.35
    s, y = [0.9, 0.4, 0.5, 0.45, 0.1, 0.05], [1, 1, 0, 0, 0, 0]
    # F1: 0.9: 2/3 (best); 0.4: 4/7. J: 0.9: 1/2, 0.4: 1 - 2/4 = 1/2 (tie: the highest, 0.9)
    assert best_f1_threshold(s, y).value == 0.9 and youden_threshold(s, y).value == 0.9


def test_bootstrap_interval_equals_an_independent_stratified_bootstrap():
    # overlapping classes of 40 and 60 cases: the resampled AUROCs take many values, so the interval's
    # ends move with the seed, the number of resamples and alpha
    data = np.random.default_rng(7)
    y = np.r_[np.ones(40, int), np.zeros(60, int)]
    s = data.normal(size=100) + 0.8 * y
    rng = np.random.default_rng(0)  # the documented default seed
    pos, neg = s[y == 1], s[y == 0]
    stats = []
    for _ in range(1000):  # the documented default number of resamples
        p, n = rng.choice(pos, pos.size), rng.choice(neg, neg.size)
        stats.append(roc_auc_score(np.r_[np.ones(p.size), np.zeros(n.size)], np.r_[p, n]))
    low, high = np.quantile(stats, [0.025, 0.975])
    ci = bootstrap_auroc_ci(s, y)
    assert ci == AurocInterval(pytest.approx(roc_auc_score(y, s)), pytest.approx(low), pytest.approx(high), 0.05, 1000)
    assert low < ci.auroc < high < 1.0 and np.quantile(stats, 0.9) < high  # a real interval, not capped at 1
    with pytest.raises(ValueError, match=r"^errors must be finite"):
        normality_scores([1.0, float("nan")])
    wide = bootstrap_auroc_ci(s, y, alpha=0.5, n=200, seed=3)
    assert wide.alpha == 0.5 and wide.n_bootstrap == 200
    assert bootstrap_auroc_ci(s, y, n=1).n_bootstrap == 1  # one resample is allowed
    for alpha in (0.0, 1.0):
        with pytest.raises(ValueError, match=rf"alpha must be in \(0, 1\), got {alpha}"):
            bootstrap_auroc_ci(s, y, alpha=alpha)
