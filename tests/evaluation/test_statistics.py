"""k-fold summaries and the paired two-sided t-test."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from scipy.stats import ttest_rel

from mama_monai.evaluation import PairedTTest, paired_t_test, summarize_folds
from mama_monai.evaluation import statistics as statistics_module


def test_fold_summary_gives_mean_and_sample_std_per_metric():
    folds = [
        {"auroc": 0.90, "f1": 0.5, "tp": 3, "method": "youden"},
        {"auroc": 0.80, "f1": 0.7, "tp": 5, "method": "youden"},
        {"auroc": 0.85, "f1": 0.6, "tp": 4, "method": "youden"},
    ]
    s = summarize_folds(folds)
    assert list(s) == ["auroc", "f1", "tp"]
    assert s["auroc"] == pytest.approx((0.85, 0.05))
    assert s["f1"] == pytest.approx((0.6, 0.1))
    assert s["tp"] == pytest.approx((4.0, 1.0))


def test_fold_summary_of_one_fold_has_nan_std_and_nan_folds_propagate():
    assert math.isnan(summarize_folds([{"auroc": 0.9}])["auroc"][1])
    mean, _ = summarize_folds([{"auroc": 0.9}, {"auroc": float("nan")}])["auroc"]
    assert math.isnan(mean)


@pytest.mark.parametrize(
    "folds, match",
    [([], "non-empty"), ({"auroc": 0.9}, "non-empty"), ([{"auroc": 0.9}, {"f1": 0.5}], "'auroc'"), ([1.0], r"\[0\]")],
)
def test_fold_summary_rejects_bad_input(folds, match):
    with pytest.raises(ValueError, match=match):
        summarize_folds(folds)


def test_paired_t_test_matches_scipy_on_known_data():
    a = [0.957, 0.949, 0.962, 0.951, 0.958]
    b = [0.924, 0.931, 0.918, 0.927, 0.922]
    r = paired_t_test(a, b)
    ref = ttest_rel(a, b)
    assert isinstance(r, PairedTTest)
    assert r.t == pytest.approx(ref.statistic) and r.p == pytest.approx(ref.pvalue)
    assert r.mean_difference == pytest.approx(np.mean(np.subtract(a, b)))
    assert r.significant and r.n == 5 and r.alpha == 0.05


def test_paired_t_test_is_not_significant_for_inconsistent_differences():
    r = paired_t_test([0.90, 0.80, 0.85], [0.85, 0.86, 0.84])
    assert r.p == pytest.approx(ttest_rel([0.90, 0.80, 0.85], [0.85, 0.86, 0.84]).pvalue)
    assert r.p > 0.05 and not r.significant


def test_paired_t_test_with_identical_results_is_not_significant():
    r = paired_t_test([0.9, 0.8, 0.7], [0.9, 0.8, 0.7])
    assert math.isnan(r.t) and not r.significant and r.mean_difference == 0.0


@pytest.mark.parametrize(
    "a, b, kwargs, match",
    [
        ([0.9, 0.8, 0.7], [0.9, 0.8], {}, "shapes"),
        ([0.9], [0.8], {}, "at least 2 folds"),
        ([0.9, float("nan")], [0.8, 0.7], {}, "finite"),
        ([[0.9, 0.8]], [[0.8, 0.7]], {}, "1-D"),
        ([0.9, 0.8], [0.8, 0.7], {"alpha": 0.0}, "alpha"),
    ],
)
def test_paired_t_test_rejects_bad_input(a, b, kwargs, match):
    with pytest.raises(ValueError, match=match):
        paired_t_test(a, b, **kwargs)


def test_docstring_examples_run():
    assert doctest.testmod(statistics_module).failed == 0
