"""Argument checks shared by the evaluation modules (private).

Every error names the parameter, echoes the value (or its shape) and says what was expected.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["as_binary", "as_finite", "as_labels", "as_scores", "require_both_classes"]


def as_scores(scores: ArrayLike, name: str = "scores") -> np.ndarray:
    """``scores`` as a finite, non-empty 1-D float64 array."""
    a = np.asarray(scores, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {a.shape}.")
    if not np.all(np.isfinite(a)):
        bad = a[~np.isfinite(a)][:3].tolist()
        raise ValueError(f"{name} must be finite, got non-finite values such as {bad}.")
    return a


def as_labels(labels: ArrayLike, n: int, name: str = "labels") -> np.ndarray:
    """``labels`` as a 1-D int array of 0 (normal) / 1 (anomalous) with ``n`` entries."""
    a = np.asarray(labels)
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"{name} must be a 1-D array with one label per score ({n}), got shape {a.shape}.")
    values = np.unique(a)
    if not np.isin(values, [0, 1]).all():
        raise ValueError(f"{name} must hold only 0 (normal) and 1 (anomalous), got values {values[:5].tolist()}.")
    return a.astype(np.int64)


def as_finite(x: ArrayLike, name: str) -> np.ndarray:
    """``x`` as a finite, non-empty float64 array of any shape."""
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {a.shape}.")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got {int(np.sum(~np.isfinite(a)))} non-finite values.")
    return a


def as_binary(x: ArrayLike, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``x`` as a boolean array of exactly ``shape`` (non-zero means True)."""
    a = np.asarray(x)
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have the shape of the anomaly maps {tuple(shape)}, got {a.shape}.")
    return a != 0


def require_both_classes(labels: np.ndarray, name: str = "labels") -> None:
    """Refuse a label set with only one class (AUROC and friends are undefined on it)."""
    n_pos = int(labels.sum())
    if n_pos == 0 or n_pos == labels.size:
        raise ValueError(
            f"{name} must contain both normal (0) and anomalous (1) cases, got {labels.size - n_pos} normal "
            f"and {n_pos} anomalous."
        )
