"""Shared helpers: synthetic DICOM files and series written with pydicom, and pydicom's real test files.

Tests get the helpers through the ``dicom`` fixture (``dicom.write_series(...)``), not by importing
this module, so that several ``conftest.py`` files in the test tree never clash.
"""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

UID_ROOT = "1.2.826.0.1.3680043.8.498."


def testdata(name: str) -> str:
    """Path of a file bundled with pydicom (never downloaded); skips the test when absent."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not bundled")
    return str(path)


def write_dicom_file(path: Path, pixels: np.ndarray, **attributes) -> Path:
    """Write a single-frame grayscale DICOM file; ``attributes`` set or override any element.

    ``pixels`` holds the stored values, shape (rows, columns), int16 or uint16.
    """
    pixels = np.ascontiguousarray(pixels)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = attributes.pop("SOPClassUID", CTImageStorage)
    meta.MediaStorageSOPInstanceUID = generate_uid(UID_ROOT)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Synthetic^Patient"
    ds.PatientID = "SYNTH-0001"
    ds.StudyInstanceUID = generate_uid(UID_ROOT)
    ds.SeriesInstanceUID = generate_uid(UID_ROOT)
    ds.Modality = "CT"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    ds.PixelSpacing = [1.0, 1.0]
    for key, value in attributes.items():
        setattr(ds, key, value)
    ds.PixelData = pixels.tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return path


def write_series(
    folder: Path,
    volume: np.ndarray,
    spacing: tuple[float, float, float] = (0.7, 0.8, 2.5),
    origin: tuple[float, float, float] = (-120.0, -110.0, 40.0),
    orientation: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    series_uid: str | None = None,
    skip: tuple[int, ...] = (),
    shuffle: bool = True,
    seed: int = 0,
    rescale: tuple[float, float] = (1.0, -1024.0),
    **attributes,
) -> list[Path]:
    """Write ``volume`` (slices, rows, columns) of stored int16 values as a CT series.

    Slice ``k`` sits at ``origin + k * spacing[2] * normal`` (normal = row × column cosines);
    PixelSpacing is ``[spacing[0] (between rows), spacing[1] (between columns)]``. With
    ``shuffle``, file names and InstanceNumbers are random so that only positions give the order.
    Slices whose index is in ``skip`` are not written (a missing slice).

    Returns:
        The written files in anatomical order (skipped slices left out).
    """
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid(UID_ROOT)
    study_uid = generate_uid(UID_ROOT)
    frame_uid = generate_uid(UID_ROOT)
    row, col = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    normal = np.cross(row, col)
    rng = random.Random(seed)
    indices = [k for k in range(volume.shape[0]) if k not in skip]
    names = [f"IM{n:05d}" for n in rng.sample(range(10000, 99999), len(indices))] if shuffle else None
    numbers = rng.sample(range(1, 1000), len(indices)) if shuffle else [k + 1 for k in indices]
    paths = []
    for j, k in enumerate(indices):
        name = names[j] if shuffle else f"slice_{k:03d}.dcm"
        position = np.asarray(origin) + k * spacing[2] * normal
        path = write_dicom_file(
            folder / name,
            volume[k].astype(np.int16),
            SeriesInstanceUID=series_uid,
            StudyInstanceUID=study_uid,
            FrameOfReferenceUID=frame_uid,
            ImagePositionPatient=[f"{v:.6f}" for v in position],
            ImageOrientationPatient=[f"{v:.6f}" for v in orientation],
            PixelSpacing=[spacing[0], spacing[1]],
            SliceThickness=spacing[2],
            InstanceNumber=numbers[j],
            RescaleSlope=rescale[0],
            RescaleIntercept=rescale[1],
            SeriesDescription="synthetic chest",
            **attributes,
        )
        paths.append(path)
    return paths


def ras_affine_from_sitk(image) -> np.ndarray:
    """The RAS 4x4 affine of a SimpleITK image, computed independently of the package."""
    dim = image.GetDimension()
    direction = np.asarray(image.GetDirection()).reshape(dim, dim)
    affine = np.eye(4)
    affine[:dim, :dim] = direction @ np.diag(image.GetSpacing())
    affine[:dim, 3] = image.GetOrigin()
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine


@pytest.fixture
def ct_volume() -> np.ndarray:
    """Stored values (slices=6, rows=20, columns=24): a distinct ramp per slice, so order shows."""
    rows, cols = np.meshgrid(np.arange(20), np.arange(24), indexing="ij")
    return np.stack([(rows * 3 + cols + 100 * k).astype(np.int16) for k in range(6)])


@pytest.fixture
def dicom() -> SimpleNamespace:
    """The helpers above: ``write_file``, ``write_series``, ``testdata``, ``ras_affine_from_sitk``."""
    return SimpleNamespace(
        write_file=write_dicom_file,
        write_series=write_series,
        testdata=testdata,
        ras_affine_from_sitk=ras_affine_from_sitk,
    )
