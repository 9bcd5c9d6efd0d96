"""Evaluate a trained network on labelled slices: image and pixel metrics, intervals, plots."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from mama_monai.engines import AnomalyMap, anomaly_map_args, score_items
from mama_monai.evaluation import (
    bootstrap_auroc_ci,
    image_metrics,
    normality_scores,
    pixel_auroc,
    plot_montage,
    plot_normality_per_case,
    plot_roc,
    plot_score_histograms,
    pro_score,
)

__all__ = ["evaluate_items", "lesion_slices", "report_items"]


def _operating_point(values: np.ndarray, labels: np.ndarray, threshold: float | None, seed: int) -> dict[str, Any]:
    """Image metrics at ``threshold`` (from validation normals); threshold-free ones only without it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics = image_metrics(values, labels, threshold if threshold is not None else float(np.max(values)))
    if threshold is None:  # no validated operating point: never pick one on the test set
        metrics = {k: v for k, v in metrics.items() if k in ("auroc", "average_precision", "n_normal", "n_anomalous")}
        metrics["threshold"] = None
    if 0 < labels.sum() < len(labels):
        ci = bootstrap_auroc_ci(values, labels, n=1000, seed=seed)
        metrics["auroc_ci95"] = [ci.low, ci.high]
    return metrics


def _thresholds(threshold: float | dict[str, Any]) -> tuple[float, float | None]:
    """``(primary, mean_error or None)`` from a model file's threshold entry or a plain number."""
    if isinstance(threshold, dict):
        paper = threshold.get("mean_error")
        return float(threshold["value"]), (float(paper["value"]) if isinstance(paper, dict) else None)
    return float(threshold), None


def lesion_slices(items: Sequence[dict], masks: np.ndarray) -> np.ndarray:
    """Which ``items`` the pixel metrics count: the anomalous ones with a non-empty mask
    (``masks``: ``(N, *spatial)``, one per item); a bool array."""
    return np.array([bool(it["has_mask"]) and it["label"] == 1 and bool(masks[i].any()) for i, it in enumerate(items)], dtype=bool)


def _pixel_metrics(out: dict[str, np.ndarray], masks: np.ndarray, items: Sequence[dict], anomaly_map: AnomalyMap) -> dict[str, Any]:
    """``pixel_region``, ``pixel_auroc`` and ``pixel_pro`` over the anomalous items with a mask
    (:func:`lesion_slices`), inside the map's foreground (None without such items)."""
    with_mask = lesion_slices(items, masks)
    region = anomaly_map.foreground(torch.as_tensor(out["image"])).numpy()[:, 0] > 0
    described = "whole image" if anomaly_map.foreground_threshold is None else (
        f"foreground: input > {anomaly_map.foreground_threshold:g}, eroded {anomaly_map.border} px"
    )
    if not with_mask.any():
        return {"pixel_region": described, "pixel_auroc": None, "pixel_pro": None}
    maps, truth, inside = out["map"][with_mask, 0], masks[with_mask], region[with_mask]
    return {"pixel_region": described, "pixel_auroc": float(pixel_auroc(maps, truth, inside)), "pixel_pro": float(pro_score(maps, truth, inside))}


def evaluate_items(
    network: nn.Module,
    scoring: dict[str, Any],
    threshold: float | dict[str, Any],
    items: Sequence[dict],
    device: torch.device,
    plots_dir: str | Path | None = None,
    name: str = "model",
    seed: int = 0,
) -> dict[str, Any]:
    """Score ``items`` and report the paper's metrics.

    Image level: AUROC with a 95 % stratified-bootstrap interval, average precision, sensitivity,
    specificity, F1 at ``threshold``, for the configured score (``scoring["reduction"]``) and,
    for comparison, for the paper's mean error e_u. ``threshold`` is the model file's threshold
    entry (calibrated on validation normals; its ``mean_error`` entry gives the e_u operating
    point) or a number; no operating point is ever chosen on the items evaluated here: without a
    calibrated e_u threshold, its sensitivity / specificity / F1 are not reported. Pixel level,
    where items carry masks: AUROC of the anomaly maps against the masks over the anomalous
    slices, inside the scoring foreground (``pixel_region``) where the map is defined, and
    ``pixel_pro``, the per-region overlap (AUPRO up to a false-positive rate of 0.3, normalised;
    MVTec AD's and anomalib's measure: each lesion weighs the same however small). With ``plots_dir``: ROC,
    score histograms, normality per case (paper Fig. 6) and an input / reconstruction / error
    montage (paper Fig. 4-5), as ``<name>_*.png``.

    Returns:
        ``{"image": {...}, "image_mean_error": {...}, "pixel_auroc": float | None, "pixel_pro": float | None, "cases": [...], "plots": [...]}``.
    """
    anomaly_map = AnomalyMap(2, **anomaly_map_args(scoring)).to(device)
    out = score_items(network, anomaly_map, items, device)
    return report_items(out, scoring, threshold, items, plots_dir, name, seed)


def report_items(
    out: dict[str, np.ndarray],
    scoring: dict[str, Any],
    threshold: float | dict[str, Any],
    items: Sequence[dict],
    plots_dir: str | Path | None = None,
    name: str = "model",
    seed: int = 0,
) -> dict[str, Any]:
    """The report of :func:`evaluate_items` from items already scored (``out``: the arrays of
    :func:`~mama_monai.engines.evaluator.score_items` over ``items``, in their order), so that a
    caller who also needs the raw arrays (the accuracy benchmark) scores once."""
    anomaly_map = AnomalyMap(2, **anomaly_map_args(scoring))
    threshold, mean_error_threshold = _thresholds(threshold)
    scores, labels = out["score"], out["label"].astype(int)
    mean_error = ((out["image"] - out["pred"]) ** 2).reshape(len(items), -1).mean(axis=1)
    report: dict[str, Any] = {"n_cases": len(items), "scoring": dict(scoring)}
    report["image"] = _operating_point(scores, labels, threshold, seed)
    report["image_mean_error"] = _operating_point(mean_error, labels, mean_error_threshold, seed)
    masks = np.stack([np.asarray(it["mask"][0]) for it in items])
    report.update(_pixel_metrics(out, masks, items, anomaly_map))
    normality = normality_scores(scores)
    report["cases"] = [
        {
            "case_id": it["case_id"],
            "label": int(it["label"]),
            "simulated": bool(it.get("simulated", False)),
            "score": float(s),
            "mean_error": float(e),
            "normality": float(n),
            "predicted": int(s >= threshold),
        }
        for it, s, e, n in zip(items, scores, mean_error, normality)
    ]
    if plots_dir is not None:
        report["plots"] = _plots(out, labels, normality, masks, items, threshold, Path(plots_dir), name)
    return report


def _plots(
    out: dict[str, np.ndarray], labels: np.ndarray, normality: np.ndarray, masks: np.ndarray, items: Sequence[dict],
    threshold: float, plots_dir: Path, name: str,
) -> list[str]:
    """ROC, score histograms, normality per case (paper Fig. 6) and the montage (Fig. 4-5) as ``<name>_*.png``."""
    scores = out["score"]
    plots_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        plot_roc(scores, labels, plots_dir / f"{name}_roc.png", title=f"{name}: ROC", threshold=threshold),
        plot_score_histograms(scores, labels, plots_dir / f"{name}_score_histograms.png", threshold=threshold, title=f"{name}: anomaly scores"),
        plot_normality_per_case(normality, labels, plots_dir / f"{name}_normality.png", title=f"{name}: normality score per case (Eq. 14)"),
        plot_montage(
            out["image"][:, 0],
            out["pred"][:, 0],
            out["map"][:, 0],
            labels,
            plots_dir / f"{name}_montage.png",
            titles=[f"{it['case_id']} ({'anomalous' if it['label'] else 'normal'})" for it in items],
            masks=masks,
        ),
    ]
    return [str(p) for p in paths]
