"""Crop a CT to the body before it is resized to the model: the same framing for every scanner.

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
voxels above ``threshold`` (after the preset's intensity scaling; the CT presets set -400 HU,
as the demo build did) are body; the largest connected region of their projection along the
slice axis (the couch, apart from the body, drops out) gives the bounding box, widened by
``margin`` voxels and clipped to the image. An image with no body is left whole. The box is
recorded in the image's metadata (``body_box``: first and last row, first and last column of
the loaded grid) so that maps go back onto the input's own grid
(:func:`~mama_monai.data.slicing.stack_slices`) and masks get the same crop.

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

__all__ = ["BODY_BOX", "CropToBodyd", "body_box", "crop_in_plane"]

#: metadata key of the box: ``[row0, row1, col0, col1]`` (inclusive) of the loaded grid's first two axes
BODY_BOX = "body_box"


def body_box(image: torch.Tensor | np.ndarray, threshold: float, margin: int = 4) -> list[int]:
    """``[row0, row1, col0, col1]`` (inclusive) of the body in ``image`` ``(C, W, H[, D])``; the whole
    image where nothing is above ``threshold``."""
    array = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image, dtype=np.float32)
    if array.ndim not in (3, 4):
        raise ValueError(f"image must be (C, W, H) or (C, W, H, D), got shape {array.shape}.")
    body = array.mean(axis=0) > threshold
    if body.ndim == 3:
        body = body.any(axis=2)
    labels, n = ndimage.label(body)
    w, h = body.shape
    if n == 0:
        return [0, w - 1, 0, h - 1]
    largest = 1 + int(np.argmax(ndimage.sum_labels(body, labels, index=range(1, n + 1))))
    rows, cols = np.nonzero(labels == largest)
    return [max(int(rows.min()) - margin, 0), min(int(rows.max()) + margin, w - 1),
            max(int(cols.min()) - margin, 0), min(int(cols.max()) + margin, h - 1)]  # fmt: skip


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
        threshold: intensity above which a voxel is body, after the preset's scaling.
        margin: voxels added on each side of the box (default 4).
    """

    def __init__(self, keys: KeysCollection, threshold: float, margin: int = 4, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
            raise ValueError(f"margin must be an int >= 0 (voxels), got {margin!r}.")
        self.threshold, self.margin = float(threshold), margin

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        keys = list(self.key_iterator(d))
        if not keys:
            return d
        box = body_box(d[keys[0]], self.threshold, self.margin)
        for key in keys:
            cropped = crop_in_plane(d[key], box)
            if isinstance(cropped, MetaTensor):
                cropped.meta[BODY_BOX] = list(box)
            d[key] = cropped
        return d
