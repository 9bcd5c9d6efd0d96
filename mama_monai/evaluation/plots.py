"""Summary plots of a scored set, written as PNG: ROC curve, score histograms, normality per case.

Every function validates its arrays, builds a pyplot-free figure and writes it atomically
(temporary file in the target folder, then ``os.replace``); see :mod:`mama_monai.evaluation._png`.
Colours: normal cases blue, anomalous cases red, in every plot.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import roc_auc_score, roc_curve

from mama_monai.evaluation._png import new_figure, save_png_atomic
from mama_monai.evaluation._validation import as_labels, as_scores, require_both_classes

__all__ = ["plot_normality_per_case", "plot_roc", "plot_score_histograms"]

NORMAL_COLOUR, ANOMALY_COLOUR = "tab:blue", "tab:red"


def plot_roc(
    scores: ArrayLike, labels: ArrayLike, path: str | os.PathLike, title: str = "ROC", threshold: float | None = None
) -> Path:
    """Image-level ROC curve with its AUROC in the legend, and the operating point of ``threshold``.

    Args:
        scores: ``(N,)`` anomaly scores, higher = more anomalous.
        labels: ``(N,)`` 0 / 1, both classes present.
        path: output ``.png``.
        title: figure title (default ``"ROC"``).
        threshold: optional; marks (1 - specificity, sensitivity) of ``score >= threshold``.

    Returns:
        the path written.

    Example::

        >>> plot_roc([0.1, 0.3, 0.2, 0.9], [0, 0, 1, 1], "out/roc.png", title="CT, fold 0")
    """
    s = as_scores(scores)
    y = as_labels(labels, s.size)
    require_both_classes(y)
    fpr, tpr, _ = roc_curve(y, s)
    fig = new_figure(4.5, 4.5)
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, color=ANOMALY_COLOUR, lw=2, label=f"AUROC = {roc_auc_score(y, s):.3f}")
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="chance")
    if threshold is not None:
        pred = s >= threshold
        op_fpr, op_tpr = np.mean(pred[y == 0]), np.mean(pred[y == 1])
        ax.plot(op_fpr, op_tpr, "ko", label=f"threshold {threshold:.4g}")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 - specificity (FPR)", ylabel="sensitivity (TPR)", title=title)
    ax.set_aspect("equal")
    ax.legend(loc="lower right")
    return save_png_atomic(fig, path)


def plot_score_histograms(
    scores: ArrayLike,
    labels: ArrayLike,
    path: str | os.PathLike,
    threshold: float | None = None,
    title: str = "Anomaly scores",
    bins: int = 30,
) -> Path:
    """Overlaid histograms of the scores of normal and anomalous cases, on shared bins.

    Args:
        scores: ``(N,)`` anomaly scores.
        labels: ``(N,)`` 0 / 1 (one class alone is allowed, e.g. held-out normals).
        path: output ``.png``.
        threshold: optional vertical line at the decision threshold.
        title: figure title.
        bins: number of shared bins (default 30), >= 1.

    Returns:
        the path written.

    Example::

        >>> plot_score_histograms(errors, labels, "out/hist.png", threshold=0.031)
    """
    s = as_scores(scores)
    y = as_labels(labels, s.size)
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}.")
    lo, hi = float(s.min()), float(s.max())
    if threshold is not None:
        lo, hi = min(lo, threshold), max(hi, threshold)
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, int(bins) + 1)
    fig = new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    for value, name, colour in ((0, "normal", NORMAL_COLOUR), (1, "anomalous", ANOMALY_COLOUR)):
        if np.any(y == value):
            ax.hist(s[y == value], bins=edges, color=colour, alpha=0.55, label=f"{name} (n={np.sum(y == value)})")
    if threshold is not None:
        ax.axvline(threshold, color="black", ls="--", lw=1.5, label=f"threshold {threshold:.4g}")
    ax.set(xlabel="anomaly score", ylabel="cases", title=title)
    ax.legend()
    return save_png_atomic(fig, path)


def plot_normality_per_case(
    normality: ArrayLike,
    labels: ArrayLike,
    path: str | os.PathLike,
    sort: bool = False,
    title: str = "Normality score per case",
) -> Path:
    """One point per case of the normality score (paper Eq. 14, Fig. 6), coloured by label.

    Args:
        normality: ``(N,)`` normality scores, e.g. from
            :func:`~mama_monai.evaluation.metrics.normality_scores` (1 = most normal).
        labels: ``(N,)`` 0 / 1.
        path: output ``.png``.
        sort: ``False`` (default) keeps the case order on the x axis, as in the paper; ``True``
            sorts by decreasing normality, so a clean separation shows as two blocks.
        title: figure title.

    Returns:
        the path written.

    Example::

        >>> plot_normality_per_case(normality_scores(errors), labels, "out/normality.png")
    """
    p = as_scores(normality, "normality")
    y = as_labels(labels, p.size)
    order = np.argsort(-p, kind="stable") if sort else np.arange(p.size)
    p, y = p[order], y[order]
    x = np.arange(p.size)
    fig = new_figure(max(6.0, min(16.0, p.size * 0.05)), 4.0)
    ax = fig.add_subplot()
    for value, name, colour in ((0, "normal", NORMAL_COLOUR), (1, "anomalous", ANOMALY_COLOUR)):
        sel = y == value
        if np.any(sel):
            ax.scatter(x[sel], p[sel], s=14, color=colour, label=f"{name} (n={int(sel.sum())})")
    ax.set(
        xlabel="case (sorted by normality)" if sort else "case",
        ylabel="normality score",
        ylim=(-0.05, 1.05),
        title=title,
    )
    ax.legend()
    return save_png_atomic(fig, path)
