"""Pixel-level localisation metrics: pixel AUROC and the per-region overlap (PRO) score.

Both take a stack of anomaly maps ``(N, *spatial)`` (or a single map), ground-truth masks of the
same shape (non-zero = anomalous pixel) and an optional region of the same shape (e.g. the lung):
pixels outside the region count neither as normal nor as anomalous.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from mama_monai.evaluation._validation import as_binary, as_finite

__all__ = ["pixel_auroc", "pro_score"]


def _select(maps: ArrayLike, masks: ArrayLike, region: ArrayLike | None):
    m = as_finite(maps, "maps")
    gt = as_binary(masks, m.shape, "masks")
    inside = np.ones(m.shape, dtype=bool) if region is None else as_binary(region, m.shape, "region")
    n_pos, n_neg = int(np.sum(gt & inside)), int(np.sum(~gt & inside))
    if n_pos == 0 or n_neg == 0:
        where = "" if region is None else " inside region"
        raise ValueError(
            f"masks must mark both anomalous and normal pixels{where}, got {n_pos} anomalous and {n_neg} normal."
        )
    return m, gt, inside


def pixel_auroc(maps: ArrayLike, masks: ArrayLike, region: ArrayLike | None = None) -> float:
    """AUROC of every pixel's anomaly value against the ground-truth masks, pooled over the stack.

    Args:
        maps: anomaly maps, any shape, e.g. ``(N, H, W)`` or ``(N, H, W, D)``; higher = more anomalous.
        masks: same shape; non-zero marks an anomalous pixel.
        region: optional, same shape; only pixels where it is non-zero are evaluated.

    Returns:
        the pixel AUROC (sklearn's ``roc_auc_score``) as a float.

    Example::

        >>> maps = np.array([[[0.1, 0.9], [0.2, 0.3]]])
        >>> pixel_auroc(maps, maps > 0.5)
        1.0
    """
    m, gt, inside = _select(maps, masks, region)
    return float(roc_auc_score(gt[inside], m[inside]))


def _components_per_case(fg: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components (full connectivity) of each case ``fg[i]``, numbered 1..count across
    cases so that components never cross cases; 0 is background."""
    structure = ndimage.generate_binary_structure(fg.ndim - 1, fg.ndim - 1)
    components = np.zeros(fg.shape, dtype=np.int64)
    count = 0
    for i in range(fg.shape[0]):
        lab, k = ndimage.label(fg[i], structure=structure)
        components[i] = np.where(lab > 0, lab + count, 0)
        count += k
    return components, count


def pro_score(
    maps: ArrayLike, masks: ArrayLike, region: ArrayLike | None = None, fpr_limit: float = 0.3
) -> float:
    """Normalised area under the per-region overlap curve up to a false-positive rate (AUPRO).

    As in MVTec AD (Bergmann et al.) and anomalib's ``AUPRO``: the ground truth of each case is
    split into connected components (full connectivity, components never cross cases); at a
    threshold ``t`` the overlap of a component is the fraction of its pixels with value ``>= t``,
    PRO(t) is the mean overlap over all components (each region weighs the same, however small),
    and FPR(t) is the fraction of normal pixels with value ``>= t``. The curve over every observed
    value, from (0, 0), is integrated with the trapezoid rule up to ``fpr_limit`` (linearly
    interpolated there) and divided by ``fpr_limit``: 1.0 is perfect, about ``fpr_limit / 2`` is
    chance. Exact (no threshold binning), unlike anomalib's binned option.

    Args:
        maps: anomaly maps ``(N, *spatial)``; a single map is treated as ``N = 1``.
        masks: same shape; non-zero marks an anomalous pixel.
        region: optional, same shape; pixels outside it are ignored.
        fpr_limit: in ``(0, 1]`` (default 0.3).

    Returns:
        the normalised AUPRO as a float.

    Example::

        >>> maps = np.zeros((1, 8, 8)); maps[0, 2:4, 2:4] = 1.0
        >>> pro_score(maps, maps > 0)
        1.0
    """
    if not 0.0 < fpr_limit <= 1.0:
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit!r}.")
    m, gt, inside = _select(maps, masks, region)
    if m.ndim < 2:
        raise ValueError(f"maps must be (N, *spatial) or one spatial map, got shape {m.shape}.")
    fg = gt & inside
    components, count = _components_per_case(fg)
    background = np.sort(m[~gt & inside])
    thresholds = np.unique(m[inside])[::-1]  # descending: FPR and PRO grow along the curve
    fpr = (background.size - np.searchsorted(background, thresholds, side="left")) / background.size
    last = int(np.searchsorted(fpr, fpr_limit, side="right"))  # points with fpr <= limit
    thresholds = thresholds[: last + 1]  # plus one point beyond the limit to interpolate
    fpr = fpr[: last + 1]
    labels, values = components[fg], m[fg]
    order = np.lexsort((values, labels))
    labels, values = labels[order], values[order]
    starts = np.searchsorted(labels, np.arange(1, count + 2))
    pro = np.zeros(thresholds.size)
    for k in range(count):
        comp = values[starts[k] : starts[k + 1]]
        pro += (comp.size - np.searchsorted(comp, thresholds, side="left")) / comp.size
    pro /= count
    fpr, pro = np.concatenate([[0.0], fpr]), np.concatenate([[0.0], pro])
    if fpr[-1] > fpr_limit:  # interpolate the last segment at the limit
        f0, f1, p0, p1 = fpr[-2], fpr[-1], pro[-2], pro[-1]
        fpr[-1], pro[-1] = fpr_limit, p0 + (p1 - p0) * (fpr_limit - f0) / (f1 - f0)
    return float(np.trapezoid(pro, fpr) / fpr_limit)
