"""Crop a CT or MR image to the body before it is resized to the model: the same framing for every scanner.

Why (our decision; the paper's data were framed by hand): the model sees the whole field of view
resized to its input size, so the framing decides how large the anatomy is and how it is
stretched. The embedded demo CTs were cropped to the body when they were built
(``demo_data/PROVENANCE.md``), but a CT as the scanner writes it has air around the body and the
couch below it. Measured (``docs/accuracy/body_crop.md``, five seeds): models trained on the demo
scored the LIDC-IDRI-0001 test slices placed in a square field of air with a couch at chance
(slice AUROC MAMA Net 0.537, autoencoder 0.499, MemAE 0.491), and 0.786, 0.768, 0.799 with this
crop. Cropping every input the same way at load time removes that difference; on the demo CTs,
already cropped so, it changes nothing (tested).

The rule, in-plane only (a volume keeps every slice, so slice indices stay those of the file):
voxels above ``threshold`` (CT: after the preset's intensity scaling; the CT presets set -400 HU,
as the demo build did) are body; the largest region of them connected in 3D (the couch, which
touches the body in no slice, drops out) gives the in-plane bounding box of all its slices, widened
by ``margin`` voxels and clipped to the image. The first rule (2026-12-02 morning) took the largest
region of the mask's projection along the slice axis; on a real scanner-framed chest CT
(Lung-PET-CT-Dx A0001, ``benchmarks/scanner_ct_box.py``) the couch moves in-plane along the table,
its projection overlaps the body's, and that box took the couch in (columns 128-511 of 512; now
130-457, the couch lying at 375-511). The largest 3D region costs an int32 label per voxel
(~0.3 s and 64 MB for 512 x 512 x 64; 4 s and 0.6 GB for 600 slices, on one core). An image
with no body is left whole. The box is recorded in the image's metadata (``body_box``: first and
last row, first and last column of the loaded grid) so that maps go back onto the input's own
grid (:func:`~mama_monai.data.slicing.stack_slices`) and masks get the same crop.

MR (the ``mri_*`` presets; our decision, measured in ``docs/accuracy/body_crop_brain.md``): the
embedded brain T1 was cropped to its head when it was built, as the CTs were to their bodies; a
head scan as the scanner writes it has a field of view of ~256 mm around a ~150 mm wide head, and
noise in the air. The MR presets crop *first*, before the per-volume intensity scaling (whose
percentiles would otherwise move with the share of air): body is above 10 % of the volume's 99th
percentile (MR has no absolute scale; ``percentile``), each slice's mask opened by 1 voxel so that
background noise does not join the head's region (``opening``). Measured (five seeds): the demo T1's head in a
256 mm field of Rician noise, slice AUROC MAMA Net 0.750, autoencoder 0.780, MemAE 0.775 uncropped,
0.848, 0.881, 0.911 cropped; the demo T1 itself is unchanged. The box is exact up to a noise sigma
of 5 % of the 99th percentile, 1-3 voxels wider at 6-8 %, 4-8 wider at 10 %, and the whole image
(no crop) from 12 %, where the opened speckle links up.

Example:
    >>> import torch
    >>> from monai.data import MetaTensor
    >>> image = torch.zeros(1, 10, 12, 3)
    >>> image[0, 2:6, 3:9] = 1.0      # the body
    >>> image[0, 8, :] = 1.0          # a couch, apart from it
    >>> crop = CropToBodyd("image", threshold=0.5, margin=1)
    >>> out = crop({"image": MetaTensor(image)})["image"]
    >>> tuple(out.shape), out.meta["body_box"]
    ((1, 6, 8, 3), [1, 6, 2, 9])
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, SpatialCrop
from scipy import ndimage

__all__ = ["BODY_BOX", "CROP_RULE", "CROP_RULES", "CropToBodyd", "body_box", "crop_in_plane", "crops_under"]

#: metadata key of the box: ``[row0, row1, col0, col1]`` (inclusive) of the loaded grid's first two axes
BODY_BOX = "body_box"

#: the presets that crop, by the rule a model file was written under (its ``preprocessing.crop_rule``):
#: 1 (files without the key, from 2026-12-02 morning on): the CT presets; 2 (this release): CT and MR.
#: A file of rule 1 trained an MR preset without the crop, so it is scored without it. Under both
#: rules the body is now the largest region connected in 3D (rule 1's files were written when it was
#: the largest region of the projection, which kept a real couch: a fix, not a change of framing).
CROP_RULES = {1: ("ct_lung", "ct_soft_tissue"), 2: ("ct_lung", "ct_soft_tissue", "mri_t1", "mri_t2", "mri_zscore")}
#: the rule training writes now
CROP_RULE = 2


def crops_under(rule: int, preset: str) -> bool:
    """Whether ``preset`` cropped to the body when a model file of crop ``rule`` was trained."""
    return preset in CROP_RULES[rule]


def body_box(
    image: torch.Tensor | np.ndarray, threshold: float, margin: int = 4, percentile: float | None = None, opening: int = 0
) -> list[int]:
    """``[row0, row1, col0, col1]`` (inclusive) of the body in ``image`` ``(C, W, H[, D])``; the whole
    image where nothing is above the threshold.

    ``threshold`` is an intensity, or with ``percentile`` a fraction of that percentile of the
    image's intensities (MR has no absolute scale). ``opening`` > 0 opens each slice's body mask
    with a square of ``2 * opening + 1`` voxels before the regions are found, so that the speckle of MR
    background noise (isolated voxels above the threshold, in every slice) neither joins the head's
    region at its edge nor, where it is dense, links up into a region of its own.
    """
    array = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image)
    if array.ndim not in (3, 4):
        raise ValueError(f"image must be (C, W, H) or (C, W, H, D), got shape {array.shape}.")
    intensity = array[0] if array.shape[0] == 1 else array.mean(axis=0, dtype=np.float32)  # no copy of one channel
    if percentile is not None:
        threshold = threshold * float(np.percentile(intensity, percentile))
    body = intensity > threshold
    if opening > 0:
        square = np.ones((2 * opening + 1, 2 * opening + 1) + (1,) * (body.ndim - 2), dtype=bool)  # in-plane only
        body = ndimage.binary_opening(body, structure=square)
    labels, n = ndimage.label(body)  # a volume: connected in 3D, so a couch that no slice joins to the body stays apart
    w, h = body.shape[:2]
    if n == 0:
        return [0, w - 1, 0, h - 1]
    rows, cols = _largest_region(labels)[:2]
    return [max(rows.start - margin, 0), min(rows.stop - 1 + margin, w - 1),
            max(cols.start - margin, 0), min(cols.stop - 1 + margin, h - 1)]  # fmt: skip


def _largest_region(labels: np.ndarray) -> tuple[slice, ...]:
    """The bounding box (slices) of the region of ``labels`` (``scipy.ndimage.label``'s) with the
    most voxels. Regions are counted in the order of their boxes' volumes, largest first, until no
    box left can hold more voxels than the largest count so far: the body's box is usually first,
    so one count inside it decides (a bincount of every voxel took 4 s for 512 x 512 x 600)."""
    boxes = ndimage.find_objects(labels)
    volumes = [int(np.prod([s.stop - s.start for s in box])) for box in boxes]
    best, best_size = 0, -1
    for i in np.argsort(volumes)[::-1]:
        if volumes[i] <= best_size:
            break
        size = int(np.count_nonzero(labels[boxes[i]] == i + 1))
        if size > best_size:
            best, best_size = int(i), size
    return boxes[best]


def crop_in_plane(image: torch.Tensor, box: Sequence[int]) -> torch.Tensor:
    """``image`` ``(C, W, H[, D])`` cropped to ``box`` in-plane with MONAI's ``SpatialCrop`` (a
    ``MetaTensor``'s affine follows), every slice kept."""
    r0, r1, c0, c1 = (int(b) for b in box)
    start, end = [r0, c0], [r1 + 1, c1 + 1]
    if image.ndim == 4:
        start, end = start + [0], end + [int(image.shape[3])]
    return SpatialCrop(roi_start=start, roi_end=end)(image)


class CropToBodyd(MapTransform):
    """Crop ``keys`` to the body's in-plane bounding box, found on the first key (module docstring).

    Args:
        keys: the image (the box is found on the first key) and any others cropped alike.
        threshold: intensity above which a voxel is body, after the preset's scaling; with
            ``percentile``, a fraction of that percentile of the image (:func:`body_box`).
        margin: voxels added on each side of the box (default 4).
        percentile: ``None`` (default: ``threshold`` is an intensity) or a percentile in (0, 100].
        opening: in-plane binary opening of each slice's mask, in voxels (default 0: none).
    """

    def __init__(
        self, keys: KeysCollection, threshold: float, margin: int = 4, percentile: float | None = None, opening: int = 0,
        allow_missing_keys: bool = False,
    ) -> None:  # fmt: skip
        super().__init__(keys, allow_missing_keys)
        for name, value in (("margin", margin), ("opening", opening)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0 (voxels), got {value!r}.")
        if percentile is not None and (isinstance(percentile, bool) or not isinstance(percentile, (int, float)) or not 0 < percentile <= 100):
            raise ValueError(f"percentile must be None or a number in (0, 100], got {percentile!r}.")
        self.threshold, self.margin, self.opening = float(threshold), margin, opening
        self.percentile = None if percentile is None else float(percentile)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        keys = list(self.key_iterator(d))
        if not keys:
            return d
        box = body_box(d[keys[0]], self.threshold, self.margin, self.percentile, self.opening)
        for key in keys:
            cropped = crop_in_plane(d[key], box)
            if isinstance(cropped, MetaTensor):
                cropped.meta[BODY_BOX] = list(box)
            d[key] = cropped
        return d
