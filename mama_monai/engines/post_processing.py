"""Post-processing of a trained model's scores: its decision thresholds, from validation normals.

As anomalib's post-processing step owns the threshold a model ships with, this module owns the
calibration that ``train`` stores in the model file. Scores are not normalised: a case's score is
reported in the map's own units (squared error) beside the threshold.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from mama_monai.evaluation import best_f1_threshold, calibrate_threshold, youden_threshold
from mama_monai.evaluation.case_score import DEFAULT_FACTOR, SliceCoverage

__all__ = ["calibrate_thresholds"]

logger = logging.getLogger(__name__)


def calibrate_thresholds(val: dict[str, np.ndarray], quantile: float, slice_coverage: float = DEFAULT_FACTOR) -> dict[str, Any]:
    """The model's decision thresholds, from the held-out *normal* validation slices only.

    ``value`` is the ``quantile`` of their scores (the configured reduction); ``mean_error`` the
    same quantile of their mean squared error (the paper's e_u), so that every operating point a
    report gives comes from validation normals, never from the test set. Where anomalies
    (SIMULATED) are in the validation set, the best-F1 and the Youden threshold on it are recorded
    beside, for information (they are chosen on simulated lesions, so neither is used to label),
    with ``n_simulated``, the number of those lesions.
    With ``n`` normals a quantile ``q`` is resolved only when ``n >= 1 / (1 - q)``
    (20 normals for 0.95: one of them expected above the threshold); fewer is recorded as a
    ``warning`` in the result and logged.

    Args:
        val: :func:`~mama_monai.engines.evaluator.score_items` output of the validation slices
            (``score``, ``label``, ``image``, ``pred``).
        quantile: in ``(0, 1]``.
        slice_coverage: ``scoring#slice_coverage``, the factor of the case-score rule
            (:class:`~mama_monai.evaluation.case_score.SliceCoverage`): stored as
            ``slice_coverage`` with the smallest body fraction of the validation normals' maps.
    """
    normal = val["label"] == 0
    scores = val["score"][normal]
    mean_error = ((val["image"] - val["pred"]) ** 2).reshape(len(val["label"]), -1).mean(axis=1)
    primary = calibrate_threshold(scores, quantile=quantile)
    paper = calibrate_threshold(mean_error[normal], quantile=quantile)
    threshold: dict[str, Any] = {
        "value": float(primary.value),
        "method": primary.method,
        "quantile": float(quantile),
        "n_normals": int(scores.size),
        "mean_error": {"value": float(paper.value), "method": paper.method},
        "slice_coverage": SliceCoverage.calibrate(val["map"][normal], slice_coverage).as_entry(),
    }
    needed = int(np.ceil(1.0 / (1.0 - quantile) - 1e-9)) if quantile < 1 else 1
    if scores.size < needed:
        threshold["warning"] = (
            f"{scores.size} validation normals resolve the {quantile:g} quantile only coarsely "
            f"(>= {needed} needed); the false-positive rate on new normals is uncertain"
        )
        logger.warning("threshold: %s", threshold["warning"])
    if (val["label"] == 1).any() and normal.any():
        threshold["n_simulated"] = int((val["label"] == 1).sum())  # the lesions the two below are chosen on
        alt = best_f1_threshold(val["score"], val["label"])
        threshold["best_f1_on_validation"] = {"value": float(alt.value), "method": alt.method}
        youden = youden_threshold(val["score"], val["label"])
        threshold["youden_on_validation"] = {"value": float(youden.value), "method": youden.method}
    return threshold
