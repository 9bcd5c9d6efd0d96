"""Evaluate a trained network on labelled slices: image and pixel metrics, intervals, plots."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from mama_monai.engines import AnomalyMap
from mama_monai.evaluation import (
    bootstrap_auroc_ci,
    image_metrics,
    normality_scores,
    pixel_auroc,
    plot_montage,
    plot_normality_per_case,
    plot_roc,
    plot_score_histograms,
)
from mama_monai.workflows.training import score_items

__all__ = ["evaluate_items"]


def evaluate_items(
    network: nn.Module,
    scoring: dict[str, Any],
    threshold: float,
    items: Sequence[dict],
    device: torch.device,
    plots_dir: str | Path | None = None,
    name: str = "model",
    seed: int = 0,
) -> dict[str, Any]:
    """Score ``items`` and report the paper's metrics.

    Image level: AUROC with a 95 % stratified-bootstrap interval, average precision, sensitivity,
    specificity, F1 at ``threshold``, for the configured score (``scoring["reduction"]``) and,
    for comparison, for the paper's mean error e_u. Pixel level, where items carry masks: AUROC
    of the anomaly maps against the masks over the anomalous slices. With ``plots_dir``: ROC,
    score histograms, normality per case (paper Fig. 6) and an input / reconstruction / error
    montage (paper Fig. 4-5), as ``<name>_*.png``.

    Returns:
        ``{"image": {...}, "image_mean_error": {...}, "pixel_auroc": float | None, "cases": [...], "plots": [...]}``.
    """
    anomaly_map = AnomalyMap(2, sigma=float(scoring["sigma"]), reduction=scoring["reduction"]).to(device)
    out = score_items(network, anomaly_map, items, device)
    scores, labels = out["score"], out["label"].astype(int)
    mean_error = ((out["image"] - out["pred"]) ** 2).reshape(len(items), -1).mean(axis=1)
    report: dict[str, Any] = {"n_cases": len(items), "scoring": dict(scoring)}
    for key, values, thr in (("image", scores, threshold), ("image_mean_error", mean_error, None)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            metrics = image_metrics(values, labels, threshold if thr is not None else float(np.quantile(values[labels == 0], 0.95)))
        if 0 < labels.sum() < len(labels):
            ci = bootstrap_auroc_ci(values, labels, n=1000, seed=seed)
            metrics["auroc_ci95"] = [ci.low, ci.high]
        report[key] = metrics
    masks = np.stack([np.asarray(it["mask"][0]) for it in items])
    with_mask = np.array([bool(it["has_mask"]) and it["label"] == 1 and masks[i].any() for i, it in enumerate(items)])
    report["pixel_auroc"] = float(pixel_auroc(out["map"][with_mask, 0], masks[with_mask])) if with_mask.any() else None
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
        plots_dir = Path(plots_dir)
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
        report["plots"] = [str(p) for p in paths]
    return report
