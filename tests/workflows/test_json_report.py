"""Reports are strict JSON: NaN and infinity become null, nested values included."""

from __future__ import annotations

import json

from mama_monai.reports.json_report import write_json


def test_non_finite_numbers_become_null_and_the_rest_is_kept(tmp_path):
    data = {"auroc": float("nan"), "ci": [0.5, float("inf")], "cases": [{"score": -float("inf"), "id": "case_001"}], "n": 3}
    path = write_json(data, tmp_path / "report.json")
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"auroc": None, "ci": [0.5, None], "cases": [{"score": None, "id": "case_001"}], "n": 3}
