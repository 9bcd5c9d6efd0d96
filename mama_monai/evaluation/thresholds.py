"""Decision thresholds for a deployed model: from held-out normals, or from a validation set.

A deployed model scores one case at a time, so its threshold is calibrated once and stored in the
checkpoint next to the name of the rule that produced it (DESIGN §2). Every function here returns
a :class:`Threshold` ``(value, method)``; ``threshold._asdict()`` is a plain ``dict`` that loads
with ``torch.load(..., weights_only=True)``. A case is anomalous when ``score >= value``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import precision_recall_curve, roc_curve

from mama_monai.evaluation._validation import as_labels, as_scores, require_both_classes

__all__ = ["Threshold", "best_f1_threshold", "calibrate_threshold", "youden_threshold"]


class Threshold(NamedTuple):
    """A decision threshold and the rule that produced it, e.g. ``(0.031, "normal_quantile_0.95")``."""

    value: float
    method: str


def calibrate_threshold(normal_scores: ArrayLike, quantile: float = 0.95) -> Threshold:
    """Threshold at a quantile of the scores of held-out *normal* cases.

    Needs no anomalies: with ``quantile=0.95`` about 5 % of normals like the held-out ones are
    called anomalous (the expected false-positive rate; specificity about 0.95). The quantile is
    numpy's default (linear interpolation between order statistics); with few normals the
    realised rate is coarse, so report the number of normals used beside it.

    Args:
        normal_scores: ``(N,)`` scores of normal cases not used for training.
        quantile: in ``(0, 1]`` (default 0.95); ``1.0`` gives the largest normal score.

    Returns:
        ``Threshold(value, "normal_quantile_<quantile>")``.

    Example::

        >>> calibrate_threshold(np.arange(101.0), quantile=0.95)
        Threshold(value=95.0, method='normal_quantile_0.95')
    """
    s = as_scores(normal_scores, "normal_scores")
    if isinstance(quantile, bool) or not 0.0 < quantile <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], got {quantile!r}.")
    return Threshold(float(np.quantile(s, quantile)), f"normal_quantile_{quantile:g}")


def best_f1_threshold(scores: ArrayLike, labels: ArrayLike) -> Threshold:
    """The score value that maximises F1 on a validation set with anomalies.

    Candidates are the observed scores (sklearn's ``precision_recall_curve``); among equal F1
    values the highest threshold wins (fewest positive calls). On a separable set this is the
    lowest anomalous score, which gives F1 = 1.

    Args:
        scores: ``(N,)`` anomaly scores, higher = more anomalous.
        labels: ``(N,)`` 0 / 1, both classes present.

    Returns:
        ``Threshold(value, "best_f1")``.

    Example::

        >>> best_f1_threshold([0.1, 0.2, 0.7, 0.9], [0, 0, 1, 1])
        Threshold(value=0.7, method='best_f1')
    """
    s = as_scores(scores)
    y = as_labels(labels, s.size)
    require_both_classes(y)
    precision, recall, thresholds = precision_recall_curve(y, s)
    precision, recall = precision[:-1], recall[:-1]  # the last point (recall 0) has no threshold
    den = precision + recall
    f1 = np.divide(2 * precision * recall, den, out=np.zeros_like(den), where=den > 0)
    best = np.flatnonzero(f1 == f1.max())[-1]  # thresholds increase: last = highest
    return Threshold(float(thresholds[best]), "best_f1")


def youden_threshold(scores: ArrayLike, labels: ArrayLike) -> Threshold:
    """The score value that maximises Youden's J = sensitivity + specificity - 1 on a validation set.

    Candidates are the observed scores (sklearn's ``roc_curve``, every point kept); among equal J
    values the highest threshold wins.

    Args:
        scores: ``(N,)`` anomaly scores, higher = more anomalous.
        labels: ``(N,)`` 0 / 1, both classes present.

    Returns:
        ``Threshold(value, "youden")``.

    Example::

        >>> youden_threshold([0.1, 0.2, 0.7, 0.9], [0, 0, 1, 1])
        Threshold(value=0.7, method='youden')
    """
    s = as_scores(scores)
    y = as_labels(labels, s.size)
    require_both_classes(y)
    fpr, tpr, thresholds = roc_curve(y, s, drop_intermediate=False)
    fpr, tpr, thresholds = fpr[1:], tpr[1:], thresholds[1:]  # the first point is the +inf threshold
    j = tpr - fpr
    best = np.flatnonzero(j == j.max())[0]  # thresholds decrease: first = highest
    return Threshold(float(thresholds[best]), "youden")
