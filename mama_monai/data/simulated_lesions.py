"""SIMULATED lesions: blurred disks (2D) or balls (3D) that brighten or darken real anatomy.

Every image this module returns is synthetic in the lesion area and must be labelled
``simulated: true`` wherever it is stored or reported. ``w`` is a disk of the given radius
blurred by a Gaussian (sigma = ``blur`` x radius) and scaled so that ``w = 1`` at the centre;
the mask is ``w >= 0.5``. Two kinds of lesion (``mode``):

- ``"scale"``: a lesion with signed contrast ``c`` (e.g. +0.4 or -0.35) multiplies the image by
  ``1 + c * w``: the local intensity changes by exactly the fraction ``c`` at the centre.
  Defaults follow DESIGN.md §7 (radius 5-15 px, 30-50 % of the local intensity, either sign).
- ``"tissue"``: the lesion takes the intensity ``t`` of *another tissue of the same image*,
  ``x (1 - w) + t w``, with ``t`` a randomly drawn foreground value at least ``min_difference``
  brighter (sign +1) or darker (-1) than the centre. A soft-tissue blob in lung, air in soft
  tissue, CSF-dark or fat-bright spots in brain: in a lung window a real nodule raises the
  local intensity by 0.5-0.6, which no 30-50 % scaling of lung parenchyma (intensity ~0.1)
  comes near. Our decision, measured against real nodules in ``docs/accuracy.md``.

Pattern (TorchIO's): random parameters are drawn by :func:`sample_lesions`, then the
deterministic :func:`insert_lesions` applies them; :func:`simulate_lesions` does both.

No MONAI ``RandomizableTransform`` wraps them (the first release had one that only tests used):
the validation lesions (:func:`~mama_monai.data.case_slices.simulated_anomalies`) are drawn with a
generator seeded by ``(seed, slice index)``, so the validation set of a run does not depend on the
order in which slices pass through a transform's shared random state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

__all__ = ["LESION_MODES", "Lesion", "sample_lesions", "insert_lesions", "simulate_lesions"]


#: ``"scale"``: the local intensity times ``1 + contrast``; ``"tissue"``: another tissue's intensity.
LESION_MODES = ("scale", "tissue")


@dataclass(frozen=True)
class Lesion:
    """One simulated lesion: ``center`` (voxel indices), ``radius`` (voxels), signed ``contrast``;
    ``target`` (``"tissue"`` mode) is the intensity the lesion takes, ``None`` for ``"scale"``."""

    center: tuple[int, ...]
    radius: float
    contrast: float
    target: float | None = None


def _check_range(name: str, value: Sequence[float], low: float) -> tuple[float, float]:
    if len(value) != 2 or not low <= value[0] <= value[1]:
        raise ValueError(f"{name} must be a (min, max) pair with {low} <= min <= max, got {value!r}.")
    return float(value[0]), float(value[1])


def sample_lesions(
    image: np.ndarray,
    rng: np.random.Generator,
    n: int = 1,
    radius_px: Sequence[float] = (5, 15),
    contrast: Sequence[float] = (0.3, 0.5),
    sign: int | None = None,
    foreground: np.ndarray | None = None,
    mode: str = "scale",
    min_difference: float = 0.15,
    target_range: Sequence[float] | None = None,
) -> list[Lesion]:
    """Draw ``n`` lesions inside the foreground of a spatial array (no channel axis).

    Args:
        image: the spatial image (H, W) or (H, W, D); used for the default foreground.
        rng: a ``numpy.random.Generator``; the same generator state gives the same lesions.
        n: number of lesions. Default 1.
        radius_px: (min, max) radius in voxels. Default (5, 15).
        contrast: (min, max) magnitude of the intensity change as a fraction. Default (0.3, 0.5).
        sign: +1 (bright), -1 (dark) or None (each lesion's sign drawn at random). Default None.
        foreground: bool mask of allowed centres; default ``image > 0.1 * max(image)``.
        mode: ``"scale"`` (default) or ``"tissue"`` (module docstring); ``contrast`` is unused
            for ``"tissue"``.
        min_difference: ``"tissue"`` only: the least intensity difference between the lesion
            and its centre. Default 0.15.
        target_range: ``"tissue"`` only: (min, max) intensity the lesion takes, drawn uniformly
            (e.g. solid soft tissue for a lung nodule), instead of a value of the image's own
            foreground. Default None (the image's own).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n!r}.")
    if sign not in (None, 1, -1):
        raise ValueError(f"sign must be +1, -1 or None, got {sign!r}.")
    if mode not in LESION_MODES:
        raise ValueError(f"mode must be one of {list(LESION_MODES)}, got {mode!r}.")
    r_lo, r_hi = _check_range("radius_px", radius_px, 0.5)
    c_lo, c_hi = _check_range("contrast", contrast, 0.0)
    target = None if target_range is None else _check_range("target_range", target_range, -np.inf)
    image = np.asarray(image)
    fg = image > 0.1 * float(image.max()) if foreground is None else np.asarray(foreground, bool)
    if fg.shape != image.shape:
        raise ValueError(f"foreground shape {fg.shape} differs from image shape {image.shape}.")
    lesions = []
    for _ in range(n):
        radius = float(rng.uniform(r_lo, r_hi))
        inner = np.zeros_like(fg)
        margin = int(np.ceil(radius))
        inner[tuple(slice(margin, max(margin, s - margin)) for s in fg.shape)] = True
        candidates = np.argwhere(fg & inner)
        if len(candidates) == 0:
            raise ValueError(f"no foreground voxel at least {margin} voxels from the border of an image of shape {image.shape}.")
        s = sign if sign is not None else int(rng.choice([-1, 1]))
        if mode == "tissue":
            lesions.append(_tissue_lesion(image, fg, candidates, rng, radius, s, min_difference, target))
            continue
        center = tuple(int(v) for v in candidates[rng.integers(len(candidates))])
        lesions.append(Lesion(center, radius, s * float(rng.uniform(c_lo, c_hi))))
    return lesions


def _tissue_lesion(
    image: np.ndarray, fg: np.ndarray, candidates: np.ndarray, rng: np.random.Generator, radius: float, sign: int,
    min_difference: float, target_range: tuple[float, float] | None = None, tries: int = 50,
) -> Lesion:
    """A ``"tissue"`` lesion: a centre and a foreground intensity (or one drawn from ``target_range``)
    ``sign``-wards of it by >= ``min_difference``."""
    values = image[fg]
    for _ in range(tries):
        center = tuple(int(v) for v in candidates[rng.integers(len(candidates))])
        local = float(image[center])
        if target_range is not None:
            target = float(rng.uniform(*target_range))
            if sign * (target - local) >= min_difference:
                return Lesion(center, radius, target - local, target)
            continue
        allowed = values[sign * (values - local) >= min_difference]
        if allowed.size:
            target = float(allowed[rng.integers(allowed.size)])
            return Lesion(center, radius, target - local, target)
    if target_range is not None:
        raise ValueError(
            f"no lesion target in target_range {target_range} is {'above' if sign > 0 else 'below'} a lesion centre by "
            f">= {min_difference} in {tries} tries; widen target_range, lower min_difference or move the centres."
        )
    raise ValueError(
        f"no foreground intensity {'above' if sign > 0 else 'below'} a lesion centre by >= {min_difference} "
        f"in {tries} tries (image range {float(values.min()):.3g}..{float(values.max()):.3g}); lower min_difference."
    )


def insert_lesions(image: np.ndarray, lesions: Sequence[Lesion], blur: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Deterministically insert ``lesions`` into a spatial array (no channel axis).

    Args:
        image: (H, W) or (H, W, D) array.
        lesions: the lesions to insert (see :func:`sample_lesions`).
        blur: Gaussian sigma as a fraction of the radius. Default 0.25.

    Returns:
        ``(image, mask)``: float32 image with the lesions, uint8 mask (1 inside any lesion).

    Example:
        >>> img, mask = insert_lesions(np.ones((64, 64)), [Lesion((32, 32), 8.0, -0.4)])
        >>> round(float(img[32, 32]), 3), int(mask.sum()) > 0
        (0.6, True)
    """
    out = np.asarray(image, dtype=np.float32).copy()
    mask = np.zeros(out.shape, dtype=np.uint8)
    grid = np.indices(out.shape, dtype=np.float32)
    for lesion in lesions:
        if len(lesion.center) != out.ndim:
            raise ValueError(f"lesion center {lesion.center} has {len(lesion.center)} coordinates, image has {out.ndim} dims.")
        sigma = max(blur * lesion.radius, 1e-3)
        half = int(np.ceil(lesion.radius + 4 * sigma))
        box = tuple(slice(max(c - half, 0), min(c + half + 1, s)) for c, s in zip(lesion.center, out.shape))
        dist2 = sum((grid[(i,) + box] - c) ** 2 for i, c in enumerate(lesion.center))
        weight = gaussian_filter((dist2 <= lesion.radius**2).astype(np.float32), sigma, mode="constant")
        weight /= weight[tuple(c - b.start for c, b in zip(lesion.center, box))]
        weight = np.clip(weight, 0.0, 1.0)
        if lesion.target is None:
            out[box] *= 1.0 + lesion.contrast * weight
        else:
            out[box] = out[box] * (1.0 - weight) + lesion.target * weight
        mask[box] |= (weight >= 0.5).astype(np.uint8)
    return out, mask


def simulate_lesions(
    image: np.ndarray,
    rng: np.random.Generator,
    n: int = 1,
    radius_px: Sequence[float] = (5, 15),
    contrast: Sequence[float] = (0.3, 0.5),
    sign: int | None = None,
    foreground: np.ndarray | None = None,
    mode: str = "scale",
    min_difference: float = 0.15,
    target_range: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[Lesion]]:
    """Draw and insert SIMULATED lesions: :func:`sample_lesions` then :func:`insert_lesions`.

    Returns ``(image, mask, lesions)``. Example:
        >>> img, mask, lesions = simulate_lesions(slice_2d, np.random.default_rng(0), n=2)  # doctest: +SKIP
    """
    lesions = sample_lesions(image, rng, n, radius_px, contrast, sign, foreground, mode, min_difference, target_range)
    out, mask = insert_lesions(image, lesions)
    return out, mask, lesions
