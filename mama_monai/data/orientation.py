"""Canonical orientation of volumes before slicing, and its exact undoing for outputs.

A volume file can store its voxels in any order: an axial DICOM series read in position order is
LPS (first array axis towards the patient's left, second posterior, third superior), a NIfTI
from another tool may be RAS, and a volume acquired coronally stores coronal planes along its
last axis. The models see 2D slices cut along the last array axis, so without a common order a
coronally stored volume would be sliced coronally and an RAS one flipped left-right and
front-back: both would look anomalous to a model trained on axial LPS slices.

Decision: every volume is reoriented to **LPS** (MONAI's :class:`~monai.transforms.Orientation`,
a pure permutation and flip of the voxel array, no resampling) as it is loaded for a model:
the last axis is then superior (slices are axial) and an axial DICOM series, the common case, is
unchanged. The volume's ``spatial_shape`` / ``original_affine`` metadata become the canonical
grid's, and ``source_axcodes`` keeps the file's own orientation so that
:func:`restore_orientation` puts an anomaly map back onto the file's voxel grid exactly (same
shape, same affine, voxel for voxel). 2D images (radiographs, PNG) are left as they are.

Example::

    >>> import torch
    >>> from monai.data import MetaTensor
    >>> ras = MetaTensor(torch.arange(24.0).reshape(1, 2, 3, 4))   # identity affine: RAS
    >>> lps = to_canonical(ras)
    >>> lps.meta["source_axcodes"], tuple(lps.shape)
    ('RAS', (1, 2, 3, 4))
    >>> bool(torch.equal(restore_orientation(lps).as_tensor(), ras.as_tensor()))
    True
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Orientation
from monai.utils import MetaKeys

__all__ = ["CANONICAL_AXCODES", "axcodes", "restore_orientation", "to_canonical"]

#: the voxel order every volume is given before slicing (DICOM's patient coordinate convention)
CANONICAL_AXCODES = "LPS"


def axcodes(affine: np.ndarray | torch.Tensor) -> str:
    """The orientation codes of a 4x4 RAS affine, e.g. ``"LPS"`` (nibabel's ``aff2axcodes``)."""
    return "".join(nib.aff2axcodes(np.asarray(affine, dtype=np.float64)))


def _reoriented(image: MetaTensor, codes: str) -> MetaTensor:
    out = Orientation(axcodes=codes, labels=(("L", "R"), ("P", "A"), ("I", "S")))(image)
    out = out if isinstance(out, MetaTensor) else MetaTensor(out)
    out.applied_operations = []  # the orientation is recorded as source_axcodes, not as a pending inverse
    return out


def to_canonical(image: MetaTensor) -> MetaTensor:
    """A channel-first volume ``(C, W, H, D)`` in :data:`CANONICAL_AXCODES` order; 2D images unchanged.

    Sets ``meta["source_axcodes"]`` (the file's orientation) and makes ``spatial_shape`` and
    ``original_affine`` describe the canonical grid.
    """
    if image.ndim != 4:
        return image
    source = axcodes(image.affine)
    out = image if source == CANONICAL_AXCODES else _reoriented(image, CANONICAL_AXCODES)
    out.meta["source_axcodes"] = source
    out.meta[MetaKeys.SPATIAL_SHAPE] = np.asarray(out.shape[1:])
    out.meta[MetaKeys.ORIGINAL_AFFINE] = out.affine.detach().cpu().numpy().astype(np.float64)
    return out


def restore_orientation(volume: MetaTensor, source_axcodes: str | None = None) -> MetaTensor:
    """``volume`` (on the canonical grid) back in the file's voxel order: ``source_axcodes``, or
    ``volume.meta["source_axcodes"]``; unchanged when there is none or it is already canonical."""
    codes = source_axcodes or volume.meta.get("source_axcodes")
    if volume.ndim != 4 or not codes or str(codes) == axcodes(volume.affine):
        return volume
    return _reoriented(volume, str(codes))
