"""Image figures: the input / reconstruction / error-map montage (paper Fig. 4-5) and the clinical overlay.

Both are written atomically as PNG (see :mod:`mama_monai.evaluation._png`). Colour scales are
fixed, never stretched per case: a per-case maximum would paint the most normal case's largest
error as red as a tumour. Pass the same ``error_vmax`` / ``vmax`` to every figure of a run (e.g.
a high quantile of the errors of held-out normals) to make them comparable.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from numpy.typing import ArrayLike

from mama_monai.evaluation._png import new_figure, save_png_atomic
from mama_monai.evaluation._validation import as_binary, as_finite, as_labels

__all__ = ["overlay_png", "plot_montage"]


def _stack2d(x: ArrayLike, name: str) -> np.ndarray:
    a = as_finite(x, name)
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 3:
        raise ValueError(f"{name} must be a stack of 2-D images (N, H, W) or (N, 1, H, W), got shape {a.shape}.")
    return a


def _pick_rows(labels: np.ndarray, max_rows: int) -> np.ndarray:
    """Up to ``max_rows`` cases, half of them anomalous where possible, each class in input order."""
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    n_pos = min(pos.size, max(max_rows - neg.size, (max_rows + 1) // 2))
    n_neg = min(neg.size, max_rows - n_pos)
    return np.concatenate([neg[:n_neg], pos[:n_pos]])


def plot_montage(
    images: ArrayLike,
    reconstructions: ArrayLike,
    error_maps: ArrayLike,
    labels: ArrayLike,
    path: str | os.PathLike,
    titles: Sequence[str] | None = None,
    max_rows: int = 6,
    masks: ArrayLike | None = None,
    error_vmax: float | None = None,
) -> Path:
    """Rows of input | reconstruction | error map for normal and anomalous cases (paper Fig. 4-5).

    Input and reconstruction of a row share the input's grey scale; all error maps share one
    colour scale ``[0, error_vmax]`` with one colour bar. When there are more cases than
    ``max_rows``, normals come first, then anomalies, about half each, each in input order:
    select cases beforehand to show specific ones.

    Args:
        images: ``(N, H, W)`` or ``(N, 1, H, W)`` inputs.
        reconstructions: same shape, the network's outputs.
        error_maps: same shape, e.g. ``|x - x_hat|`` (non-negative).
        labels: ``(N,)`` 0 / 1, shown at the start of each row.
        path: output ``.png``.
        titles: optional ``N`` case names, e.g. case ids.
        max_rows: most rows to draw (default 6), >= 1.
        masks: optional ground truth of the same shape; its outline is drawn on the input and
            the error map.
        error_vmax: top of the error colour scale; default the largest error shown.

    Returns:
        the path written.

    Example::

        >>> plot_montage(x, x_hat, (x - x_hat) ** 2, labels, "out/montage.png", titles=case_ids)
    """
    x, r, e, gt = _montage_arrays(images, reconstructions, error_maps, masks)
    y = as_labels(labels, x.shape[0])
    if titles is not None and len(titles) != x.shape[0]:
        raise ValueError(f"titles must hold one name per case ({x.shape[0]}), got {len(titles)}.")
    if isinstance(max_rows, bool) or not isinstance(max_rows, (int, np.integer)) or max_rows < 1:
        raise ValueError(f"max_rows must be a positive integer, got {max_rows!r}.")
    rows = _pick_rows(y, int(max_rows))
    vmax = _error_scale(e[rows], error_vmax)
    fig = new_figure(7.5, 2.4 * rows.size + 0.4)
    axes = fig.subplots(rows.size, 3, squeeze=False)
    heat = None
    for row, i in enumerate(rows):
        name = "" if titles is None else f"{titles[i]}\n"
        heat = _montage_row(axes[row], x[i], r[i], e[i], None if gt is None else gt[i], vmax, f"{name}{'anomalous' if y[i] else 'normal'}", bool(y[i]))
    for col, header in enumerate(("input", "reconstruction", "error map")):
        axes[0, col].set_title(header)
    fig.colorbar(heat, ax=axes[:, 2].tolist(), shrink=0.8, label="reconstruction error")
    return save_png_atomic(fig, path)


def _montage_arrays(images: ArrayLike, reconstructions: ArrayLike, error_maps: ArrayLike, masks: ArrayLike | None):
    """``(x, r, e, gt)`` as ``(N, H, W)`` arrays of one shape (``gt`` None without masks)."""
    x = _stack2d(images, "images")
    r, e = _stack2d(reconstructions, "reconstructions"), _stack2d(error_maps, "error_maps")
    for name, a in (("reconstructions", r), ("error_maps", e)):
        if a.shape != x.shape:
            raise ValueError(f"{name} must have the shape of images {x.shape}, got {a.shape}.")
    if masks is None:
        return x, r, e, None
    m = np.asarray(masks)
    return x, r, e, as_binary(m[:, 0] if m.ndim == 4 and m.shape[1] == 1 else m, x.shape, "masks")


def _error_scale(errors: np.ndarray, error_vmax: float | None) -> float:
    """The top of the error colour scale: ``error_vmax``, or the largest error shown (1 if all 0)."""
    if error_vmax is None:
        return float(errors.max()) or 1.0
    if np.isfinite(error_vmax) and error_vmax > 0:
        return float(error_vmax)
    raise ValueError(f"error_vmax must be a positive number, got {error_vmax!r}.")


def _montage_row(axes, image, reconstruction, error, mask, vmax: float, label: str, anomalous: bool):
    """One montage row: input and reconstruction on the input's grey scale, the error map on
    ``[0, vmax]``, the mask's outline on input and error; returns the error map's image."""
    lo, hi = float(image.min()), float(image.max())
    hi = hi if hi > lo else lo + 1.0
    axes[0].imshow(image, cmap="gray", vmin=lo, vmax=hi)
    axes[1].imshow(reconstruction, cmap="gray", vmin=lo, vmax=hi)
    heat = axes[2].imshow(error, cmap="inferno", vmin=0.0, vmax=vmax)
    if mask is not None and mask.any():
        for col in (0, 2):
            axes[col].contour(mask, levels=[0.5], colors="lime", linewidths=1.0)
    axes[0].set_ylabel(label, color="red" if anomalous else "black")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return heat


def _image_and_map(image2d: ArrayLike, anomaly_map2d: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Both as finite ``(H, W)`` arrays of one shape (a leading channel of 1 dropped)."""
    img = as_finite(image2d, "image2d")
    amap = as_finite(anomaly_map2d, "anomaly_map2d")
    img = img[0] if img.ndim == 3 and img.shape[0] == 1 else img
    amap = amap[0] if amap.ndim == 3 and amap.shape[0] == 1 else amap
    if img.ndim != 2:
        raise ValueError(f"image2d must be a 2-D image (H, W), got shape {img.shape}.")
    if amap.shape != img.shape:
        raise ValueError(f"anomaly_map2d must have the shape of image2d {img.shape}, got {amap.shape}.")
    return img, amap


def overlay_png(
    image2d: ArrayLike,
    anomaly_map2d: ArrayLike,
    path: str | os.PathLike,
    threshold: float | None = None,
    alpha: float = 0.5,
    vmax: float | None = None,
    title: str | None = None,
) -> Path:
    """The clinical overlay: the grey-scale image with the anomaly map as a semi-transparent heat map.

    The heat map spans ``[0, vmax]`` (jet colour map, with a colour bar) and its opacity ramps
    linearly from 0 where the map is 0 to ``alpha`` at ``vmax``, so tissue the model finds normal
    keeps its grey values instead of being tinted. Where ``threshold`` is given, the outline of
    ``anomaly_map >= threshold`` is drawn in cyan: the region the model calls anomalous.

    Args:
        image2d: ``(H, W)`` image (or ``(1, H, W)``), displayed from its minimum to its maximum.
        anomaly_map2d: same shape, non-negative anomaly map.
        path: output ``.png``.
        threshold: optional pixel threshold for the outline.
        alpha: heat-map opacity at ``vmax``, in ``[0, 1]`` (default 0.5).
        vmax: top of the heat scale; default the map's maximum. Pass one fixed value for all
            cases of a run so that colours mean the same thing in every overlay.
        title: optional title, e.g. case id, score and label.

    Returns:
        the path written.

    Example::

        >>> overlay_png(slice2d, error2d, "out/case_001/overlay.png", threshold=0.05, vmax=0.1)
    """
    img, amap = _image_and_map(image2d, anomaly_map2d)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}.")
    top = float(amap.max()) if vmax is None else float(vmax)
    if vmax is not None and not (np.isfinite(top) and top > 0):
        raise ValueError(f"vmax must be a positive number, got {vmax!r}.")
    top = top if top > 0 else 1.0
    lo, hi = float(img.min()), float(img.max())
    h, w = img.shape
    fig = new_figure(6.0 * min(w / h, 2.0) + 1.2, 6.0)
    ax = fig.add_subplot()
    ax.imshow(img, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1.0)
    norm = Normalize(vmin=0.0, vmax=top, clip=True)
    rgba = colormaps["jet"](norm(amap))
    rgba[..., 3] = alpha * norm(amap)  # opacity ramps from 0 at no anomaly to alpha at vmax
    ax.imshow(rgba)
    heat = ScalarMappable(norm=norm, cmap="jet")
    if threshold is not None and amap.min() < threshold <= amap.max():
        ax.contour(amap >= threshold, levels=[0.5], colors="cyan", linewidths=1.5)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    fig.colorbar(heat, ax=ax, shrink=0.8, label="anomaly")
    return save_png_atomic(fig, path, dpi=120)
