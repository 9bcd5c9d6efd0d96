"""Per-case figures of ``score``'s report: a strip of slices with the map overlaid, and the slice-score curve.

The strip shows up to ``max_panels`` slices evenly spread over the case, always including the
slice that gave the case score (outlined in red), each as the model saw it (the preset's intensities at the
model size) with the anomaly map as a heat overlay whose opacity ramps from 0 to 0.6 at twice the
threshold (the overlay PNG's scale) and the region ``map >= threshold`` outlined in cyan. Panels
show ``(W, H)`` slices transposed, rows = image rows, as DICOM viewers show an axial slice.

Example:
    >>> slice_strip_png(pictures, maps, scores, 0.05, "case_001/slices.png")  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize

from mama_monai.evaluation._png import new_figure, save_png_atomic

__all__ = ["slice_score_curve_png", "slice_strip_png", "strip_indices"]


def strip_indices(n_slices: int, top: int, max_panels: int = 12) -> list[int]:
    """Up to ``max_panels`` slice indices evenly spread over ``0..n_slices-1``, including ``top``.

    Raises:
        ValueError: ``n_slices < 1``, ``top`` outside the slices or ``max_panels < 1``.
    """
    if n_slices < 1 or not 0 <= top < n_slices or max_panels < 1:
        raise ValueError(f"need n_slices >= 1, 0 <= top < n_slices and max_panels >= 1, got {n_slices}, {top}, {max_panels}.")
    if n_slices <= max_panels:
        return list(range(n_slices))
    picked = sorted({int(round(v)) for v in np.linspace(0, n_slices - 1, max_panels)})
    if top not in picked:
        picked[int(np.argmin([abs(p - top) for p in picked]))] = top
    return sorted(set(picked))


def slice_strip_png(
    pictures: np.ndarray,
    maps: np.ndarray,
    slice_scores: np.ndarray,
    threshold: float,
    path: str | os.PathLike,
    max_panels: int = 12,
    columns: int = 6,
    top: int | None = None,
) -> Path:
    """Write the slice strip (module docstring).

    Args:
        pictures: ``(N, W, H)`` slices as the model saw them.
        maps: ``(N, W, H)`` anomaly maps of the same slices.
        slice_scores: ``(N,)`` slice scores.
        threshold: the model's threshold (outline and colour scale).
        path: output ``.png``.
        max_panels: most slices shown (default 12).
        columns: panels per row (default 6).
        top: the slice that decided the case score, always shown, framed red (default: the maximum).
    """
    pictures, maps, slice_scores = np.asarray(pictures), np.asarray(maps), np.asarray(slice_scores)
    if pictures.shape != maps.shape or pictures.ndim != 3 or len(slice_scores) != len(pictures):
        raise ValueError(f"pictures and maps must be (N, W, H) with N slice scores, got {pictures.shape}, {maps.shape}, {slice_scores.shape}.")
    top = int(np.argmax(slice_scores)) if top is None else int(top)
    indices = strip_indices(len(pictures), top, max_panels)
    cols = min(columns, len(indices))
    rows = math.ceil(len(indices) / cols)
    fig = new_figure(2.2 * cols, 2.4 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    scale = 2 * threshold if threshold > 0 else float(maps.max()) or 1.0
    norm = Normalize(vmin=0.0, vmax=scale, clip=True)
    lo, hi = float(pictures.min()), float(pictures.max())
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, k in zip(axes.ravel(), indices):
        ax.imshow(pictures[k].T, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1.0)
        rgba = colormaps["jet"](norm(maps[k].T))
        rgba[..., 3] = 0.6 * norm(maps[k].T)
        ax.imshow(rgba)
        if threshold > 0 and maps[k].min() < threshold <= maps[k].max():
            ax.contour(maps[k].T >= threshold, levels=[0.5], colors="cyan", linewidths=0.8)
        ax.set_title(f"slice {k}: {slice_scores[k]:.3g}", fontsize=8, color="red" if k == top else "black")
        if k == top:
            ax.set_axis_on()
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor("red")
                spine.set_linewidth(2.5)
    return save_png_atomic(fig, path, dpi=90)


def slice_score_curve_png(
    slice_scores: np.ndarray,
    threshold: float,
    path: str | os.PathLike,
    title: str = "",
    counted: np.ndarray | None = None,
    top: int | None = None,
) -> Path:
    """Write the slice score against the slice index, with the threshold and the case's slice
    ``top`` (default: the maximum) marked; slices where ``counted`` is False (not in the case
    score, :mod:`mama_monai.evaluation.case_score`) are drawn as grey crosses."""
    scores = np.asarray(slice_scores, dtype=np.float64)
    top = int(np.argmax(scores)) if top is None else int(top)
    fig = new_figure(6.0, 2.4)
    ax = fig.add_subplot()
    ax.plot(np.arange(len(scores)), scores, marker="." if len(scores) < 60 else None, color="tab:blue", label="slice score")
    if counted is not None and not np.all(counted):
        out = np.flatnonzero(~np.asarray(counted, dtype=bool))
        ax.plot(out, scores[out], "x", color="0.5", label="not counted (little body)")
    ax.axhline(threshold, color="tab:red", linestyle="--", label=f"threshold {threshold:.3g}")
    ax.plot([top], [scores[top]], "o", color="red", label=f"case score, slice {top}")
    ax.set_xlabel("slice (last axis)")
    ax.set_ylabel("score")
    ax.legend(fontsize=7, loc="best")
    if title:
        ax.set_title(title, fontsize=9)
    return save_png_atomic(fig, path, dpi=90)
