"""Cross-validation summaries and the paper's paired two-sided t-test between two models."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import ttest_rel

__all__ = ["PairedTTest", "paired_t_test", "summarize_folds"]


def _is_number(v: object) -> bool:
    return isinstance(v, (numbers.Real, np.number)) and not isinstance(v, (bool, np.bool_))


def summarize_folds(fold_metrics: Sequence[Mapping[str, object]]) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation of each metric over the folds of a k-fold cross-validation.

    The standard deviation is the sample one (``ddof=1``, the spread of fold results as the paper
    reports "mean ± std"); with a single fold it is ``nan``. A ``nan`` in any fold propagates to
    that metric's summary on purpose (an undefined fold is not silently dropped). Keys whose
    values are not numbers in every fold (e.g. a threshold method name) are skipped; a numeric
    metric missing from some fold is refused.

    Args:
        fold_metrics: one ``dict`` per fold, e.g. the outputs of
            :func:`~mama_monai.evaluation.metrics.image_metrics`.

    Returns:
        ``{metric: (mean, std)}`` in the key order of the first fold, plain floats.

    Example::

        >>> summarize_folds([{"auroc": 0.5, "method": "youden"}, {"auroc": 0.75}, {"auroc": 1.0}])
        {'auroc': (0.75, 0.25)}
    """
    if isinstance(fold_metrics, Mapping) or len(fold_metrics) == 0:
        raise ValueError(f"fold_metrics must be a non-empty list of per-fold dicts, got {fold_metrics!r}.")
    for i, fold in enumerate(fold_metrics):
        if not isinstance(fold, Mapping):
            raise ValueError(f"fold_metrics[{i}] must be a dict of metric values, got {type(fold).__name__}.")
    keys = [k for k in fold_metrics[0] if _is_number(fold_metrics[0][k])]
    summary: dict[str, tuple[float, float]] = {}
    for key in keys:
        values = []
        for i, fold in enumerate(fold_metrics):
            if key not in fold or not _is_number(fold[key]):
                raise ValueError(
                    f"fold_metrics[{i}] must hold a number for {key!r} like fold 0, got {fold.get(key, 'nothing')!r}."
                )
            values.append(float(fold[key]))
        v = np.asarray(values)
        std = float(np.std(v, ddof=1)) if v.size > 1 else float("nan")
        summary[key] = (float(np.mean(v)), std)
    return summary


class PairedTTest(NamedTuple):
    """Result of :func:`paired_t_test` (``_asdict()`` gives a plain dict)."""

    t: float
    p: float
    mean_difference: float
    significant: bool
    n: int
    alpha: float


def paired_t_test(a: ArrayLike, b: ArrayLike, alpha: float = 0.05) -> PairedTTest:
    """Two-sided paired Student's t-test between two models' per-fold results (the paper's test).

    Fold ``i`` of ``a`` and of ``b`` must come from the same split. Uses
    ``scipy.stats.ttest_rel``. When every difference is identical the statistic is undefined
    (scipy returns ``nan``, or ``±inf`` for a constant non-zero difference): ``significant`` is
    then ``False`` for ``nan`` and follows ``p`` otherwise.

    Args:
        a: ``(K,)`` metric of model A per fold (e.g. AUROC of MAMA Net).
        b: ``(K,)`` the same metric of model B on the same folds (e.g. MemAE).
        alpha: significance level in ``(0, 1)`` (default 0.05).

    Returns:
        :class:`PairedTTest` ``(t, p, mean_difference = mean(a - b), significant = p < alpha, n, alpha)``.

    Example::

        >>> r = paired_t_test([0.95, 0.96, 0.94, 0.97, 0.95], [0.91, 0.93, 0.90, 0.92, 0.91])
        >>> r.significant, round(r.mean_difference, 3)
        (True, 0.04)
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"a and b must be 1-D with one value per fold each, got shapes {x.shape} and {y.shape}.")
    if x.size < 2:
        raise ValueError(f"a and b must hold at least 2 folds for a paired t-test, got {x.size}.")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError(f"a and b must be finite, got a={x.tolist()} and b={y.tolist()}.")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}.")
    res = ttest_rel(x, y)
    t, p = float(res.statistic), float(res.pvalue)
    return PairedTTest(t, p, float(np.mean(x - y)), bool(p < alpha), int(x.size), float(alpha))
