"""The case score counts only the slices that show as much body as the model's validation normals
(mama_monai/evaluation/case_score.py): known answers on small arrays."""

from __future__ import annotations

import numpy as np
import pytest

from mama_monai.evaluation.case_score import SliceCoverage, body_fractions


def _maps(pixels_in_body: list[int], side: int = 10) -> np.ndarray:
    """``(N, 1, side, side)`` maps with the given number of positive pixels each."""
    maps = np.zeros((len(pixels_in_body), 1, side, side))
    for k, n in enumerate(pixels_in_body):
        maps[k, 0].flat[:n] = 0.1 + k  # any positive value is inside the foreground
    return maps


def test_body_fraction_is_the_share_of_pixels_inside_the_score_foreground():
    assert body_fractions(_maps([100, 50, 3, 0])).tolist() == [1.0, 0.5, 0.03, 0.0]
    with pytest.raises(ValueError, match=r"non-empty stack .* got shape \(0, 1, 4, 4\)"):
        body_fractions(np.zeros((0, 1, 4, 4)))


def test_calibration_keeps_the_smallest_normal_fraction_and_the_floor_is_factor_times_it():
    rule = SliceCoverage.calibrate(_maps([80, 40, 60]), factor=0.5)
    assert (rule.factor, rule.min_normal_fraction, rule.floor) == (0.5, 0.4, 0.2)
    assert rule.as_entry() == {"factor": 0.5, "min_normal_fraction": 0.4, "floor": 0.2}
    assert SliceCoverage.from_threshold({"value": 1.0, "slice_coverage": rule.as_entry()}) == rule


def test_an_odd_slice_with_little_body_does_not_decide_the_case():
    # slice 0: the neck (2 % body) with the highest score; slices 1-3 in the calibrated range
    scores, fractions = np.array([0.9, 0.2, 0.5, 0.3]), np.array([0.02, 0.45, 0.6, 0.2])
    case = SliceCoverage(0.5, 0.4).case_score(scores, fractions)  # floor 0.2: slice 3 (0.2) counts, slice 0 does not
    assert (case.score, case.slice_index, case.counted.tolist(), case.all_counted_by_fallback) == (0.5, 2, [False, True, True, True], False)
    # factor 0 (and a model file without the entry): every slice counts, the maximum decides
    for rule in (SliceCoverage(0.0, 0.4), SliceCoverage.from_threshold({"value": 1.0})):
        assert (rule.case_score(scores, fractions).score, rule.case_score(scores, fractions).slice_index) == (0.9, 0)


def test_when_no_slice_has_enough_body_every_slice_counts_and_it_is_said():
    case = SliceCoverage(0.5, 0.8).case_score(np.array([0.1, 0.7, 0.4]), np.array([0.1, 0.2, 0.3]))
    assert (case.score, case.slice_index, case.counted.tolist(), case.all_counted_by_fallback) == (0.7, 1, [True, True, True], True)


@pytest.mark.parametrize("kwargs, match", [
    ({"factor": 1.5}, r"factor must be a number in \[0, 1\], got 1.5"),
    ({"factor": True}, r"factor must be a number in \[0, 1\], got True"),
    ({"min_normal_fraction": -0.1}, r"min_normal_fraction must be a number in \[0, 1\], got -0.1"),
])  # fmt: skip
def test_bad_rule_values_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SliceCoverage(**kwargs)


def test_scores_and_fractions_must_match():
    with pytest.raises(ValueError, match=r"two \(N,\) arrays, N >= 1, got \(3,\) and \(2,\)"):
        SliceCoverage().case_score(np.zeros(3), np.zeros(2))
