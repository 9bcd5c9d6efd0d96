"""Cut a volume into 2D slices that remember where they came from, and put per-slice results back.

:func:`slice_volume` turns ``{"image": (C, W, H, D), ...}`` into one dictionary per slice,
``{"image": (C, W, H), ...}`` (other entries copied), whose ``MetaTensor`` metadata holds:

- ``slice_index`` (int), ``slice_axis`` (spatial axis, 0-based, default 2 = the last: axial for
  RAS-oriented CT), ``num_slices``;
- ``volume_shape`` / ``volume_affine``: the grid the slices were cut from;
- ``original_shape`` / ``original_affine``: the grid as loaded (the reader's ``spatial_shape`` and
  ``original_affine``; equal to the volume's unless a transform such as a preset's in-plane
  ``Resized`` changed it); ``body_box`` where a CT preset cropped the volume to the body first
  (:mod:`mama_monai.data.body_crop`): results go back into that box, 0 around it;
- ``filename_or_obj``: the source path; ``affine``: the slice's own 4×4 affine (the volume's, with
  the slice's position folded into the translation), so a slice written alone still lands in place.

:func:`stack_slices` is the inverse: per-slice 2D results (images, anomaly maps, masks), in any
order and of any in-plane size, are resized back to the volume's in-plane size with MONAI's
``Resize`` where needed, stacked along the slice axis and given the volume's affine — or, with
``grid="original"``, resized to the loaded grid with its affine, ready for ``SaveImage``. Unmodified
slices round-trip exactly. A 2D image is one slice (``slice_index`` 0) and stacks back to 2D.

MONAI's ``PatchIterd`` / ``GridPatchDataset`` would cut ``(C, W, H, 1)`` patches but keep only a
patch location, not a per-slice affine; plain indexing is clearer and exact.

Example:
    >>> import torch
    >>> from monai.data import MetaTensor
    >>> volume = MetaTensor(torch.rand(1, 4, 5, 3))
    >>> slices = slice_volume({"image": volume, "case_id": "c1"})
    >>> len(slices), slices[0]["image"].shape, int(slices[2]["image"].meta["slice_index"])
    (3, torch.Size([1, 4, 5]), 2)
    >>> torch.equal(stack_slices([s["image"] for s in slices]), volume)
    True
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Resize
from monai.utils import MetaKeys

from mama_monai.data.body_crop import BODY_BOX

__all__ = ["slice_volume", "stack_slices"]

_SLICE_KEYS = (
    "slice_index",
    "slice_axis",
    "num_slices",
    "volume_shape",
    "volume_affine",
    "original_shape",
    "original_affine",
)


def _as_meta_tensor(image: torch.Tensor) -> MetaTensor:
    return image if isinstance(image, MetaTensor) else MetaTensor(image)


def slice_volume(data: Mapping[Hashable, Any], key: str = "image", axis: int = -1) -> list[dict]:
    """Cut ``data[key]`` into 2D slices along spatial ``axis``.

    Args:
        data: a dictionary with a channel-first image ``(C, W, H, D)`` (or ``(C, W, H)``: one slice)
            under ``key``; other entries (case id, label, ...) are copied into every slice.
        key: the image's key (default ``"image"``).
        axis: spatial axis to slice along, ``0..2`` or negative (default ``-1``: the last).

    Returns:
        One dictionary per slice, in index order, with ``data[key]`` replaced by a ``(C, ·, ·)``
        ``MetaTensor`` carrying the metadata of the module docstring.

    Raises:
        ValueError: ``data[key]`` is not 3D or 4D, or ``axis`` is out of range.
    """
    image = _as_meta_tensor(data[key])
    spatial = image.ndim - 1
    if spatial not in (2, 3):
        raise ValueError(f"data[{key!r}] must be (C, W, H) or (C, W, H, D), got shape {tuple(image.shape)}.")
    if not -spatial <= axis < spatial:
        raise ValueError(f"axis must be in [{-spatial}, {spatial - 1}] for a {spatial}D image, got {axis}.")
    axis = axis % spatial
    affine = image.affine.detach().cpu().to(torch.float64)
    volume_shape = tuple(int(s) for s in image.shape[1:])
    original_shape = tuple(int(s) for s in np.asarray(image.meta.get(MetaKeys.SPATIAL_SHAPE, volume_shape)))
    original_affine = torch.as_tensor(np.asarray(image.meta.get(MetaKeys.ORIGINAL_AFFINE, affine)), dtype=torch.float64)
    num = 1 if spatial == 2 else volume_shape[axis]
    slices = []
    for index in range(num):
        if spatial == 2:
            array, slice_affine = image.as_tensor(), affine.clone()
        else:
            array = image.as_tensor().select(axis + 1, index)
            slice_affine = affine.clone()
            slice_affine[:, 3] = affine[:, 3] + affine[:, axis] * index
            # in-plane axes keep their columns, the slice-normal column moves to the third place
            keep = [a for a in range(3) if a != axis]
            slice_affine[:, :3] = affine[:, [*keep, axis]]
        meta = {k: v for k, v in image.meta.items() if k not in (MetaKeys.AFFINE, *_SLICE_KEYS)}
        meta.update(
            {
                "slice_index": index,
                "slice_axis": axis,
                "num_slices": num,
                "volume_shape": torch.as_tensor(volume_shape),
                "volume_affine": affine.clone(),
                "original_shape": torch.as_tensor(original_shape),
                "original_affine": original_affine.clone(),
                MetaKeys.AFFINE: slice_affine,
            }
        )
        item = dict(data)
        item[key] = MetaTensor(array.clone(), meta=meta)
        slices.append(item)
    return slices


def _uncrop(stacked: torch.Tensor, box: list[int], original_shape: tuple[int, ...], mode: str) -> torch.Tensor:
    """``stacked`` ``(C, w, h[, D])`` resized to the body ``box`` of the loaded grid and placed in
    zeros of ``original_shape`` (:mod:`mama_monai.data.body_crop`)."""
    r0, r1, c0, c1 = box
    inside = (r1 - r0 + 1, c1 - c0 + 1, *original_shape[2:])
    if tuple(stacked.shape[1:]) != inside:
        stacked = torch.as_tensor(Resize(spatial_size=inside, mode=mode)(stacked)).to(stacked.dtype)
    full = torch.zeros((stacked.shape[0], *original_shape), dtype=stacked.dtype)
    full[:, r0 : r1 + 1, c0 : c1 + 1] = stacked
    return full


def stack_slices(
    slices: Sequence[torch.Tensor],
    reference: Mapping[str, Any] | None = None,
    grid: str = "volume",
    mode: str = "bilinear",
) -> MetaTensor:
    """Put per-slice 2D results back into a volume on the volume's (or the loaded) grid.

    Args:
        slices: ``(C, h, w)`` tensors, one per slice; their order is taken from ``slice_index``.
            Each is a ``MetaTensor`` from :func:`slice_volume` (possibly transformed), or a plain
            tensor when ``reference`` is given.
        reference: slice metadata to use instead of each slice's own (e.g. ``slices[0].meta``
            from :func:`slice_volume` when the results are plain tensors in slice order).
        grid: ``"volume"`` (default): the grid the slices were cut from; ``"original"``: the grid
            as loaded, undoing a preset's in-plane resize and crop (0 outside the ``body_box``).
        mode: interpolation used where a size must change (``"bilinear"``; ``"nearest"`` for masks).

    Returns ``MetaTensor`` ``(C, W, H, D)`` (``(C, W, H)`` for a 2D source) with the grid's affine.
    Raises ``ValueError``: no slices, missing or repeated slice indices, or an unknown ``grid``.
    """
    if not slices:
        raise ValueError("slices must not be empty.")
    if grid not in ("volume", "original"):
        raise ValueError(f"grid must be 'volume' or 'original', got {grid!r}.")
    metas = [dict(reference) if reference is not None else dict(getattr(s, "meta", {})) for s in slices]
    missing = [k for k in ("volume_shape", "volume_affine", "slice_axis") if k not in metas[0]]
    if missing:
        raise ValueError(f"slice metadata lacks {missing}; pass slices from slice_volume() or a reference.")
    first = metas[0]
    volume_shape = tuple(int(s) for s in first["volume_shape"])
    axis = int(first["slice_axis"])
    if reference is not None:
        indices = list(range(len(slices)))
    else:
        indices = [int(m["slice_index"]) for m in metas]
    expected = 1 if len(volume_shape) == 2 else volume_shape[axis]
    if sorted(indices) != list(range(expected)):
        raise ValueError(f"need exactly one slice per index 0..{expected - 1}, got indices {sorted(indices)}.")
    in_plane = volume_shape if len(volume_shape) == 2 else tuple(s for a, s in enumerate(volume_shape) if a != axis)
    resize = Resize(spatial_size=in_plane, mode=mode)
    ordered = [None] * expected
    for index, item in zip(indices, slices, strict=True):
        array = item.as_tensor() if isinstance(item, MetaTensor) else torch.as_tensor(item)
        if tuple(array.shape[1:]) != in_plane:
            array = torch.as_tensor(resize(array)).to(array.dtype)
        ordered[index] = array
    stacked = ordered[0] if len(volume_shape) == 2 else torch.stack(ordered, dim=axis + 1)
    affine = torch.as_tensor(np.asarray(first["volume_affine"]), dtype=torch.float64)
    if grid == "original":
        original_shape = tuple(int(s) for s in first["original_shape"])
        if first.get(BODY_BOX) is not None:  # cropped to the body before the resize: back into the box
            stacked = _uncrop(stacked, [int(b) for b in first[BODY_BOX]], original_shape, mode)
        elif tuple(stacked.shape[1:]) != original_shape:
            stacked = torch.as_tensor(Resize(spatial_size=original_shape, mode=mode)(stacked)).to(stacked.dtype)
        affine = torch.as_tensor(np.asarray(first["original_affine"]), dtype=torch.float64)
    meta = {k: v for k, v in first.items() if k not in (*_SLICE_KEYS, MetaKeys.AFFINE, "applied_operations")}
    meta[MetaKeys.AFFINE] = affine
    return MetaTensor(stacked, meta=meta)
