"""The source slices of a scored DICOM input, and a map on the input's grid cut into their frames.

``score`` writes its anomaly map on the input's own voxel grid (NIfTI, RAS affine;
:func:`~mama_monai.data.orientation.restore_orientation`). A DICOM Segmentation or Parametric
Map must instead hold one frame per source slice, pixel for pixel. :func:`map_to_frames` does not
assume any index order: for every pixel of every source slice it computes the pixel's patient
position from that slice's own ImagePositionPatient, ImageOrientationPatient and PixelSpacing,
converts it to a voxel index of the map, and refuses (:class:`SourceFrameError`) when that index
is not a whole voxel (off by more than ``tolerance`` voxels) or lies outside the map: a map that is
not on the source grid is never resampled silently.

A source without ImagePositionPatient (e.g. a radiograph) is one frame: the map's 2D array
transposed to (rows, columns), as the loader reads it.

Example:
    >>> headers = read_source_headers("ct_folder", series_uid=None)  # doctest: +SKIP
    >>> frames = map_to_frames(anomaly_map, affine, headers)  # (n_slices, rows, columns)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom

from mama_monai.data.dicom_series import find_dicom_series, select_series

__all__ = ["SourceFrameError", "map_to_frames", "read_source_headers"]

_LPS_TO_RAS = np.array([-1.0, -1.0, 1.0])
#: Type 2 elements the derived objects copy from the source's Patient and General Study modules
_TYPE2 = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
    "ReferringPhysicianName", "StudyID", "AccessionNumber",
)  # fmt: skip


class SourceFrameError(ValueError):
    """The source cannot carry DICOM outputs (multi-frame file, map off its grid)."""


def read_source_headers(path: str | os.PathLike, series_uid: str | None) -> list[pydicom.Dataset]:
    """The headers (no pixel data) of the slices ``score`` read from ``path``, in slice-position order.

    Type 2 Patient / Study elements a source lacks (e.g. PatientSex) are added empty to these
    in-memory copies, as the standard allows, so the derived objects can carry them.

    Args:
        path: a DICOM series folder or one DICOM file.
        series_uid: the SeriesInstanceUID chosen for folders of several series, or ``None``.

    Raises:
        SourceFrameError: a multi-frame file (its frames are not separate instances to reference).
    """
    path = Path(path)
    files = select_series(find_dicom_series(path), path, series_uid).files if path.is_dir() else (str(path),)
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    for ds in headers:  # Type 2 elements of the Patient / General Study modules: present, empty when unknown
        for keyword in _TYPE2:
            if keyword not in ds:
                setattr(ds, keyword, None)
    frames = int(headers[0].get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise SourceFrameError(f"the source is a multi-frame DICOM file ({frames} frames); DICOM outputs need single-frame slices.")
    return headers


def _voxel_indices(ds: pydicom.Dataset, to_voxel: np.ndarray) -> np.ndarray:
    """The map voxel coordinates (not rounded) of every pixel centre of ``ds``: ``(rows, columns, 3)``.

    The pixel's patient (LPS) position is ImagePositionPatient + column * column spacing * (row
    direction) + row * row spacing * (column direction) (the first triplet of
    ImageOrientationPatient is the direction along a row); affine in (row, column), so it is
    built from one position and two steps.
    """
    position = np.array([float(v) for v in ds.ImagePositionPatient]) * _LPS_TO_RAS
    orientation = np.array([float(v) for v in ds.ImageOrientationPatient])
    row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
    linear, shift = to_voxel[:3, :3], to_voxel[:3, 3]
    start = linear @ position + shift
    along_row = linear @ (orientation[:3] * _LPS_TO_RAS) * column_spacing  # one column further
    along_column = linear @ (orientation[3:] * _LPS_TO_RAS) * row_spacing  # one row further
    rows, columns = np.arange(int(ds.Rows)), np.arange(int(ds.Columns))
    return start + rows[:, None, None] * along_column + columns[None, :, None] * along_row


def map_to_frames(volume: np.ndarray, affine: np.ndarray, headers: list[pydicom.Dataset], tolerance: float = 0.25) -> np.ndarray:
    """``volume`` (on the input grid, ``(W, H[, D])``, NIfTI RAS ``affine``) as one frame per source slice.

    Args:
        volume: the array as ``score`` writes it to NIfTI.
        affine: its 4x4 voxel-to-RAS affine.
        headers: :func:`read_source_headers` of the input.
        tolerance: largest distance, in voxels, of a source pixel from a voxel centre (default 0.25: a series
            whose slice gaps jitter within the reader's tolerance is read on a uniform grid; each slice keeps
            the map slice it was read into).

    Returns:
        ``(len(headers), rows, columns)``, same dtype as ``volume``.

    Raises:
        SourceFrameError: a source pixel off the map's voxel grid or outside it.
    """
    volume = np.asarray(volume)
    if "ImagePositionPatient" not in headers[0] or "ImageOrientationPatient" not in headers[0]:
        frame = volume.reshape(volume.shape[:2]).T if volume.ndim == 2 or volume.shape[2] == 1 else None
        shape = (int(headers[0].Rows), int(headers[0].Columns))
        if len(headers) != 1 or frame is None or frame.shape != shape:
            raise SourceFrameError(f"the source has no ImagePositionPatient and the map {volume.shape} is not its one {shape} image.")
        return frame[None].copy()
    grid = volume if volume.ndim == 3 else volume[..., None]
    to_voxel = np.linalg.inv(np.asarray(affine, dtype=np.float64))
    frames = []
    for number, ds in enumerate(headers, start=1):
        voxel = _voxel_indices(ds, to_voxel)
        index = np.rint(voxel)
        off = float(np.abs(voxel - index).max())
        if off > tolerance:
            raise SourceFrameError(
                f"source slice {number} of {len(headers)} does not lie on the map's voxel grid (off by {off:.3g} voxel); "
                "the map must be on the input's own grid."
            )
        index = index.astype(np.int64)
        if (index < 0).any() or (index >= np.array(grid.shape[:3])).any():
            raise SourceFrameError(f"source slice {number} of {len(headers)} lies outside the map {grid.shape}.")
        frames.append(grid[index[..., 0], index[..., 1], index[..., 2]])
    return np.stack(frames)
