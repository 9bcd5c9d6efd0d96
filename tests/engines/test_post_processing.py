"""The thresholds a model file ships with come from the validation NORMALS only (known answers)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from mama_monai.engines.post_processing import calibrate_thresholds


def _val(normal_scores, lesion_scores, normal_errors, lesion_errors):
    """A score_items-like result: images of zeros, reconstructions whose squared error per pixel is given."""
    scores = np.array([*normal_scores, *lesion_scores], dtype=np.float64)
    labels = np.array([0] * len(normal_scores) + [1] * len(lesion_scores))
    errors = np.array([*normal_errors, *lesion_errors], dtype=np.float64)
    image = np.full((len(scores), 1, 2, 2), 0.5)
    pred = 0.5 - np.sqrt(errors)[:, None, None, None] * np.ones((1, 1, 2, 2))  # (image - pred)^2 = error in every pixel
    maps = np.ones((len(scores), 1, 2, 2))  # every pixel in the body
    return {"score": scores, "label": labels, "image": image, "pred": pred, "map": maps}


def test_thresholds_are_quantiles_of_the_validation_normals_never_of_the_lesions():
    # 21 normals 0, 1, ..., 20 (0.95 quantile by linear interpolation: 19.0); the simulated lesions
    # score far higher, so calibrating on every validation score would give a different value
    val = _val(np.arange(21.0), [100.0, 200.0, 300.0], np.arange(21.0) / 10, [50.0, 60.0, 70.0])
    t = calibrate_thresholds(val, 0.95)
    assert t["value"] == pytest.approx(19.0) and t["method"] == "normal_quantile_0.95"
    assert t["mean_error"] == {"value": pytest.approx(1.9), "method": "normal_quantile_0.95"}  # e_u of the normals
    assert t["quantile"] == 0.95 and t["n_normals"] == 21 and t["n_simulated"] == 3 and "warning" not in t
    # best F1 on the validation set (lesions included): the lowest lesion score separates them
    assert t["best_f1_on_validation"] == {"value": 100.0, "method": "best_f1"}
    # Youden's J = TPR - FPR is 1 from the lowest lesion score up to it: the same point here
    assert t["youden_on_validation"] == {"value": 100.0, "method": "youden"}


def test_too_few_normals_for_the_quantile_are_recorded_and_logged(caplog):
    caplog.set_level(logging.WARNING)
    val = _val([1.0, 2.0, 3.0, 4.0, 5.0], [], [0.1] * 5, [])
    t = calibrate_thresholds(val, 0.9)  # 10 normals needed to resolve the 0.9 quantile
    assert t["value"] == pytest.approx(4.6) and t["n_normals"] == 5
    assert "n_simulated" not in t and "best_f1_on_validation" not in t  # no lesions: nothing chosen on them
    assert t["warning"] == (
        "5 validation normals resolve the 0.9 quantile only coarsely (>= 10 needed); "
        "the false-positive rate on new normals is uncertain"
    )
    assert t["warning"] in caplog.text
    assert "best_f1_on_validation" not in t and "youden_on_validation" not in t  # no anomalies: no such points
    # exactly enough normals: no warning; quantile 1 (the largest normal) needs one
    assert "warning" not in calibrate_thresholds(_val(np.arange(10.0), [], [0.1] * 10, []), 0.9)
    assert calibrate_thresholds(_val([3.0], [], [0.1], []), 1.0)["value"] == 3.0
    assert "warning" not in calibrate_thresholds(_val([3.0], [], [0.1], []), 1.0)


def test_both_thresholds_use_the_quantile_asked_for():
    val = _val(np.arange(11.0), [50.0], np.arange(11.0) / 10, [9.0])
    t = calibrate_thresholds(val, 0.8)  # 11 normals 0..10: the 0.8 quantile is 8.0 (e_u: 0.8)
    assert t["value"] == pytest.approx(8.0) and t["mean_error"]["value"] == pytest.approx(0.8)
    assert t["method"] == t["mean_error"]["method"] == "normal_quantile_0.8"


def test_youden_and_best_f1_points_differ_where_false_positives_are_cheap_for_one_and_not_the_other():
    # 23 normals (0..19 and 30, 31, 32), lesions 25 and 40. At 40: TPR 0.5, FPR 0 (J 0.5), F1 2/3.
    # At 25: TPR 1, FPR 3/23 (J 0.87), but 3 false positives: precision 0.4, F1 0.57.
    normals = [*range(20), 30, 31, 32]
    t = calibrate_thresholds(_val(np.array(normals, float), [25.0, 40.0], [0.1] * 23, [1.0, 1.0]), 0.95)
    assert t["youden_on_validation"] == {"value": 25.0, "method": "youden"}
    assert t["best_f1_on_validation"] == {"value": 40.0, "method": "best_f1"}


def test_slice_coverage_stores_the_smallest_body_fraction_of_the_normals_never_of_the_lesions():
    # 4 x 4 maps: normals with 16, 8 and 12 body pixels (fractions 1, 0.5, 0.75), a lesion slice with 2
    val = _val([1.0, 2.0, 3.0], [9.0], [0.1] * 3, [0.2])
    val["map"] = np.zeros((4, 1, 4, 4))
    for k, pixels in enumerate((16, 8, 12, 2)):
        val["map"][k, 0].flat[:pixels] = 0.3
    t = calibrate_thresholds(val, 0.5, slice_coverage=0.4)
    assert t["slice_coverage"] == {"factor": 0.4, "min_normal_fraction": 0.5, "floor": pytest.approx(0.2)}
    assert calibrate_thresholds(val, 0.5)["slice_coverage"]["factor"] == 0.5  # the default
