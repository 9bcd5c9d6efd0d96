"""Evaluation: pure functions on arrays for metrics, thresholds, statistics and PNG figures.

Scores are "higher = more anomalous", labels are 0 (normal) / 1 (anomalous), and a case is called
anomalous when ``score >= threshold``. Nothing here runs a network or reads data; the only I/O is
writing PNG files atomically.
"""

from mama_monai.evaluation.images import overlay_png, plot_montage
from mama_monai.evaluation.metrics import AurocInterval, bootstrap_auroc_ci, image_metrics, normality_scores
from mama_monai.evaluation.pixel import pixel_auroc, pro_score
from mama_monai.evaluation.plots import plot_normality_per_case, plot_roc, plot_score_histograms
from mama_monai.evaluation.statistics import PairedTTest, paired_t_test, summarize_folds
from mama_monai.evaluation.thresholds import Threshold, best_f1_threshold, calibrate_threshold, youden_threshold

__all__ = [
    "AurocInterval",
    "PairedTTest",
    "Threshold",
    "best_f1_threshold",
    "bootstrap_auroc_ci",
    "calibrate_threshold",
    "image_metrics",
    "normality_scores",
    "overlay_png",
    "paired_t_test",
    "pixel_auroc",
    "plot_montage",
    "plot_normality_per_case",
    "plot_roc",
    "plot_score_histograms",
    "pro_score",
    "summarize_folds",
    "youden_threshold",
]
