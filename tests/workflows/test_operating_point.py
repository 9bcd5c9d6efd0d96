"""evaluate reports the operating point at the model file's threshold, whatever the test labels say."""

from __future__ import annotations

import pytest
import torch

from mama_monai.workflows.metrics_report import evaluate_items


class _Zero(torch.nn.Module):
    """Reconstruction 0: a constant slice of value v scores v^2 (max and mean of the map alike)."""

    spatial_dims = 2

    def forward(self, x):
        return torch.zeros_like(x)


def test_the_operating_point_is_the_model_files_threshold_where_test_labels_would_pick_another():
    values, labels = [0.1, 0.2, 0.3, 0.4, 0.25, 0.5], [0, 0, 0, 0, 1, 1]
    items = [
        {"image": torch.full((1, 8, 8), v), "mask": torch.zeros(1, 8, 8), "has_mask": False, "label": y, "case_id": f"c{i}"}
        for i, (v, y) in enumerate(zip(values, labels))
    ]
    # scores: normals 0.01 0.04 0.09 0.16, anomalous 0.0625 0.25. At the model file's 0.03 every
    # anomalous case and 3 of 4 normals are called anomalous: sensitivity 1, specificity 1/4.
    # Thresholds taken from the TEST set would give other answers: the 0.95 quantile of the test
    # normals (0.1495) -> (0.5, 1.0); best F1 (0.25) -> (0.5, 1.0); Youden (0.25) -> (0.5, 1.0).
    threshold = {"value": 0.03, "mean_error": {"value": 0.03}}
    report = evaluate_items(_Zero(), {"sigma": 0.0, "reduction": "max"}, threshold, items, torch.device("cpu"))
    for key in ("image", "image_mean_error"):
        point = report[key]
        assert point["threshold"] == 0.03
        assert (point["sensitivity"], point["specificity"]) == (1.0, 0.25)
        assert (point["tp"], point["fp"], point["tn"], point["fn"]) == (2, 3, 1, 0)
        assert point["f1"] == pytest.approx(4 / 7)
        assert point["auroc"] == pytest.approx(6 / 8)  # 0.0625 beats 2 of 4 normals, 0.25 all 4
    assert [case["predicted"] for case in report["cases"]] == [0, 1, 1, 1, 1, 1]
