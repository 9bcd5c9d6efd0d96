"""The one NIfTI writer: MONAI's ``NibabelWriter`` streamed into an atomic write.

``convert`` (an input as loaded or preprocessed) and ``score`` (anomaly maps and masks) write
through :func:`write_nifti`: data type kept, trailing singleton axes squeezed, the affine as
sform and qform with code 1 (scanner coordinates, what ITK-SNAP / 3D Slicer read), spatial units
millimetres, gzip level 1 for ``.nii.gz`` (nibabel's default) with no time stamp, so the same
data give the same bytes; the file appears only when complete
(:func:`~mama_monai.atomic.atomic_write`).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import nibabel as nib
import numpy as np
from monai.data import MetaTensor, NibabelWriter
from monai.data.utils import to_affine_nd

from mama_monai.atomic import atomic_write

__all__ = ["write_nifti"]


def write_nifti(
    output: str | os.PathLike, image: MetaTensor | np.ndarray, affine: np.ndarray | None = None, dtype: type | None = None
) -> Path:
    """Write ``image`` to ``output`` (``.nii`` or ``.nii.gz``), atomically.

    Args:
        output: the file to write.
        image: a channel-first ``MetaTensor`` ``(C, W, H[, D])`` (its ``affine`` is used), or a
            plain array ``(W, H[, D])`` with ``affine``.
        affine: the 4 x 4 voxel-to-world (RAS) affine of a plain array; ignored for a ``MetaTensor``.
        dtype: the stored data type (default: the data's own).

    Returns:
        ``output`` as a ``Path``.
    """
    output = Path(output)
    nifti = _from_metatensor(image, dtype) if isinstance(image, MetaTensor) else _from_array(output, image, affine, dtype)
    nifti.set_sform(nifti.affine, code=1)
    nifti.set_qform(nifti.affine, code=1)
    nifti.header.set_xyzt_units("mm")

    def write(f) -> None:
        if not output.name.lower().endswith(".gz"):
            nifti.to_stream(f)
            return
        with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=1, mtime=0) as stream:
            nifti.to_stream(stream)

    return atomic_write(output, write)


def _from_metatensor(image: MetaTensor, dtype: type | None) -> nib.Nifti1Image:
    """What MONAI's ``NibabelWriter`` makes of a channel-first ``MetaTensor`` (channel axis moved
    where NIfTI keeps it, trailing singleton axes squeezed, the affine to 3-D)."""
    writer = NibabelWriter(output_dtype=dtype if dtype is not None else image.dtype)
    writer.set_data_array(image, channel_dim=0, squeeze_end_dims=True)
    writer.set_metadata({"affine": image.affine, "original_affine": image.affine}, resample=False)
    nifti = writer.create_backend_obj(writer.data_obj, affine=writer.affine, dtype=writer.output_dtype)
    world = to_affine_nd(r=3, affine=np.asarray(writer.affine if writer.affine is not None else np.eye(4)))
    return nib.Nifti1Image(np.asanyarray(nifti.dataobj), world, nifti.header)


def _from_array(output: Path, array: np.ndarray, affine: np.ndarray | None, dtype: type | None) -> nib.Nifti1Image:
    """A plain array ``(W, H[, D])`` with its 4 x 4 affine, as it is (no axis moved)."""
    if affine is None:
        raise ValueError(f"write_nifti({str(output)!r}): a plain array needs its affine, got None.")
    data = np.asarray(array, dtype=dtype) if dtype is not None else np.asarray(array)
    return nib.Nifti1Image(data, np.asarray(affine, dtype=np.float64))
