"""A case's score from its slice scores: the maximum over the slices that show as much body as
the model was calibrated on.

Why (our decision; the paper scores single images): a volume's score used to be the maximum of
its slice scores, so one slice unlike every training slice decided the whole case. Measured on
the embedded brain T1 (``docs/accuracy/case_score.md``): a model trained on the central slices
scored the normal volume and its copy with SIMULATED lesions by their bottom slices (the skull
base and neck, 1-3 % of the image inside the head, twice the score of any slice in the training
range), so the normal volume ranked above the one with lesions. The slices at the ends of a scan
(the vertex of the head, the neck above a chest CT, a sliver of abdomen) are exactly those with
little body in them.

The rule. A slice's *body fraction* is the fraction of its pixels inside the score's foreground
(``map > 0``: :class:`~mama_monai.engines.AnomalyMap` zeroes the map outside the eroded
foreground, and its score reduces over the same pixels). At calibration the smallest body
fraction among the held-out normal validation slices is stored with the threshold; a slice
*counts* toward the case score when its body fraction is at least ``factor`` (default 0.5) times
that minimum. The factor is a tolerance, not a fit: half the smallest body area the model was
calibrated on; 0 counts every slice (the previous behaviour). Slices that do not count are still
scored, mapped and shown; a case where none counts is scored over all its slices, with a warning
(its field of view or anatomy differs from training). What the rule cannot see: a slice with as
much body as the training slices but other anatomy (an abdomen slice beside a chest model); that
one still counts.

Example:
    >>> import numpy as np
    >>> rule = SliceCoverage(factor=0.5, min_normal_fraction=0.2)
    >>> result = rule.case_score(np.array([0.9, 0.3, 0.4]), np.array([0.02, 0.5, 0.6]))
    >>> round(result.score, 2), result.slice_index, result.counted.tolist()
    (0.4, 2, [False, True, True])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

__all__ = ["CaseScore", "SliceCoverage", "body_fractions", "DEFAULT_FACTOR"]

#: a slice counts when its body fraction is >= this times the smallest of the held-out normals'
DEFAULT_FACTOR = 0.5


def body_fractions(maps: np.ndarray) -> np.ndarray:
    """``(N,)`` fraction of each map's pixels inside the score's foreground (``map > 0``), maps ``(N, ...)``."""
    maps = np.asarray(maps)
    if maps.ndim < 2 or maps.shape[0] == 0:
        raise ValueError(f"maps must be a non-empty stack (N, ...) of anomaly maps, got shape {maps.shape}.")
    return (maps.reshape(maps.shape[0], -1) > 0).mean(axis=1)


@dataclass(frozen=True)
class CaseScore:
    """``score`` (max over the counted slices), ``slice_index`` (its slice), ``counted`` (bool per
    slice), ``all_counted_by_fallback`` (no slice had enough body: every slice counted)."""

    score: float
    slice_index: int
    counted: np.ndarray
    all_counted_by_fallback: bool = False


@dataclass(frozen=True)
class SliceCoverage:
    """The case-score rule of the module docstring.

    Args:
        factor: in ``[0, 1]``; a slice counts when its body fraction >= ``factor * min_normal_fraction``.
        min_normal_fraction: the smallest body fraction among the held-out normal slices, in ``[0, 1]``.
    """

    factor: float = DEFAULT_FACTOR
    min_normal_fraction: float = 0.0

    def __post_init__(self) -> None:
        for name in ("factor", "min_normal_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"slice coverage {name} must be a number in [0, 1], got {value!r}.")

    @property
    def floor(self) -> float:
        """The smallest body fraction that counts."""
        return float(self.factor) * float(self.min_normal_fraction)

    @classmethod
    def calibrate(cls, normal_maps: np.ndarray, factor: float = DEFAULT_FACTOR) -> SliceCoverage:
        """The rule from the anomaly maps of held-out normal slices ``(N, ...)``."""
        return cls(float(factor), float(body_fractions(normal_maps).min()))

    @classmethod
    def from_threshold(cls, threshold: Mapping[str, Any]) -> SliceCoverage:
        """The rule a model file's threshold entry stores; every slice counts where it stores none
        (a model file written before the rule)."""
        entry = threshold.get("slice_coverage")
        if entry is None:
            return cls(0.0, 0.0)
        return cls(float(entry["factor"]), float(entry["min_normal_fraction"]))

    def as_entry(self) -> dict[str, float]:
        """What the threshold entry of a model file stores."""
        return {"factor": float(self.factor), "min_normal_fraction": float(self.min_normal_fraction), "floor": self.floor}

    def case_score(self, slice_scores: np.ndarray, fractions: np.ndarray) -> CaseScore:
        """The case score of slices with ``slice_scores`` and body ``fractions`` (both ``(N,)``)."""
        scores, fractions = np.asarray(slice_scores, dtype=np.float64), np.asarray(fractions, dtype=np.float64)
        if scores.ndim != 1 or scores.size == 0 or scores.shape != fractions.shape:
            raise ValueError(f"slice_scores and fractions must be two (N,) arrays, N >= 1, got {scores.shape} and {fractions.shape}.")
        counted = fractions >= self.floor
        fallback = not counted.any()
        if fallback:
            counted = np.ones_like(counted)
        k = int(np.flatnonzero(counted)[np.argmax(scores[counted])])
        return CaseScore(float(scores[k]), k, counted, fallback)
