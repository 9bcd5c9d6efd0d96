"""Image-level metrics: AUROC, AP, confusion-matrix metrics, Eq. 14 normality and an AUROC interval.

Conventions used throughout :mod:`mama_monai.evaluation`:

- a *score* is "higher = more anomalous" (e.g. the reconstruction error);
- a *label* is 0 (normal) or 1 (anomalous);
- a case is called anomalous when ``score >= threshold``.

Decision on one-class label sets: :func:`image_metrics` returns many numbers, several of which
stay meaningful on an all-normal set (specificity and false positives of a calibrated threshold on
held-out normals), so it returns ``nan`` for AUROC and average precision and emits a
``UserWarning`` instead of failing. Functions whose only output needs both classes
(:func:`bootstrap_auroc_ci`, :func:`~mama_monai.evaluation.pixel.pixel_auroc`, the validation-set
thresholds) raise ``ValueError`` naming ``labels``. Ratios with a zero denominator (sensitivity
without anomalies, precision without positive calls) are ``nan`` as well. ``nan`` is not valid
strict JSON: a report writer should map it to ``null``.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, roc_auc_score

from mama_monai.evaluation._validation import as_labels, as_scores, require_both_classes

__all__ = ["AurocInterval", "bootstrap_auroc_ci", "image_metrics", "normality_scores"]


def _ratio(num: int, den: int) -> float:
    return float(num) / den if den else float("nan")


def image_metrics(scores: ArrayLike, labels: ArrayLike, threshold: float) -> dict[str, float | int]:
    """Image-level detection metrics at one operating point.

    Args:
        scores: ``(N,)`` anomaly scores, higher = more anomalous.
        labels: ``(N,)`` 0 (normal) / 1 (anomalous).
        threshold: a case is called anomalous when ``score >= threshold``.

    Returns:
        ``auroc``, ``average_precision`` (threshold-free; ``nan`` with a warning when ``labels``
        has one class), ``sensitivity`` (TPR), ``specificity`` (TNR), ``precision``, ``f1``,
        ``accuracy`` (floats; ``nan`` where the denominator is 0), ``tp``, ``fp``, ``tn``, ``fn``,
        ``n_normal``, ``n_anomalous`` (ints) and the ``threshold`` used. Plain Python numbers.

    Example::

        >>> m = image_metrics([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], threshold=0.3)
        >>> m["sensitivity"], m["specificity"], m["tp"], m["fp"]
        (1.0, 0.5, 2, 1)
    """
    s = as_scores(scores)
    y = as_labels(labels, s.size)
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}.")
    pred = s >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    tn = int(np.sum(~pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    n_pos = tp + fn
    if n_pos in (0, y.size):
        warnings.warn(
            f"labels contain only one class ({y.size - n_pos} normal, {n_pos} anomalous): auroc and "
            "average_precision are undefined and reported as nan.",
            UserWarning,
            stacklevel=2,
        )
        auroc = ap = float("nan")
    else:
        auroc = float(roc_auc_score(y, s))
        ap = float(average_precision_score(y, s))
    return {
        "auroc": auroc,
        "average_precision": ap,
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "precision": _ratio(tp, tp + fp),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "accuracy": _ratio(tp + tn, y.size),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "n_normal": tn + fp,
        "n_anomalous": n_pos,
        "threshold": float(threshold),
    }


def normality_scores(errors: ArrayLike) -> np.ndarray:
    """The paper's normality score (Eq. 14): ``p_u = 1 - (e_u - min e) / (max e - min e)``.

    It rescales a *set* of reconstruction errors to ``[0, 1]`` (1 = most normal), so a case's
    value depends on the other cases in the set: use it for reports (paper Fig. 6), never as a
    deployable per-case score (DESIGN §2). Rule for a constant set (``max e == min e``, including
    a single case): every case gets 1.0, i.e. nothing stands out as abnormal.

    Args:
        errors: ``(N,)`` reconstruction errors, higher = more anomalous.

    Returns:
        ``(N,)`` float64 normality scores in ``[0, 1]``.

    Example::

        >>> normality_scores([1.0, 2.0, 5.0]).tolist()
        [1.0, 0.75, 0.0]
    """
    e = as_scores(errors, "errors")
    lo, hi = e.min(), e.max()
    if hi == lo:
        return np.ones_like(e)
    return 1.0 - (e - lo) / (hi - lo)


class AurocInterval(NamedTuple):
    """An AUROC with its bootstrap percentile interval (``_asdict()`` gives a plain dict)."""

    auroc: float
    low: float
    high: float
    alpha: float
    n_bootstrap: int


def _auroc_mann_whitney(pos: np.ndarray, neg: np.ndarray) -> float:
    """AUROC as the Mann-Whitney U statistic (ties count 1/2), equal to sklearn's value."""
    ranks = rankdata(np.concatenate([pos, neg]))
    return float((ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0) / (pos.size * neg.size))


def bootstrap_auroc_ci(
    scores: ArrayLike, labels: ArrayLike, n: int = 1000, seed: int = 0, alpha: float = 0.05
) -> AurocInterval:
    """AUROC with a ``1 - alpha`` stratified-bootstrap percentile interval (DESIGN §7).

    Each of the ``n`` resamples draws, with replacement, as many anomalous cases from the
    anomalous ones and as many normal cases from the normal ones as the data have (stratified),
    so every resample holds both classes and has the original class balance. The interval is the
    ``alpha/2`` and ``1 - alpha/2`` percentiles of the resampled AUROCs; the point estimate is the
    AUROC of the full data. Deterministic for a given ``seed``.

    Args:
        scores: ``(N,)`` anomaly scores, higher = more anomalous.
        labels: ``(N,)`` 0 / 1, both classes present.
        n: number of bootstrap resamples (default 1000), >= 1.
        seed: seed of the ``numpy.random.Generator`` (default 0).
        alpha: 1 - confidence level, in ``(0, 1)`` (default 0.05 for a 95 % interval).

    Returns:
        :class:`AurocInterval` ``(auroc, low, high, alpha, n_bootstrap)``.

    Example::

        >>> ci = bootstrap_auroc_ci([0.1, 0.2, 0.3, 0.9, 0.4, 0.8], [0, 0, 0, 1, 1, 1], n=200)
        >>> ci.low <= ci.auroc <= ci.high
        True
    """
    s = as_scores(scores)
    y = as_labels(labels, s.size)
    require_both_classes(y)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer number of resamples, got {n!r}.")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}.")
    pos, neg = s[y == 1], s[y == 0]
    rng = np.random.default_rng(seed)
    stats = np.empty(int(n))
    for i in range(int(n)):
        stats[i] = _auroc_mann_whitney(rng.choice(pos, pos.size), rng.choice(neg, neg.size))
    low, high = np.quantile(stats, [alpha / 2.0, 1.0 - alpha / 2.0])
    return AurocInterval(float(roc_auc_score(y, s)), float(low), float(high), float(alpha), int(n))
