"""Benchmark the way in: slices per second for decode and decode + preprocessing, on one core.

A synthetic CT series (``--slices`` × 512 × 512 int16 by default, a smooth body-like phantom plus
noise, written with pydicom in a temporary folder, file names shuffled) and the same volume as
NIfTI (``.nii.gz`` and ``.nii``) are loaded the way the pipelines load them:

- **decode**: :func:`mama_monai.data.loading.load_image` (series discovery and validation,
  SimpleITK/GDCM or nibabel decode, MONAI ``MetaTensor``);
- **decode + preprocess**: then the ``ct_lung`` preset on the volume (HU window, in-plane resize to
  ``--size``, anti-aliased) and :func:`mama_monai.data.slicing.slice_volume` into 2D slices.

One core: ``torch.set_num_threads(1)`` and SimpleITK's global thread count set to 1. Each figure
is the median of ``--repeats`` runs after one warm-up (the page cache is warm: this measures
decoding, not the disk).

Run from the repository root::

    python benchmarks/loader.py                 # 64 slices of 512 x 512, 3 repeats
    python benchmarks/loader.py --slices 16 --repeats 1
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import SimpleITK as sitk
import torch
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure this checkout's code, installed or not

from mama_monai.data.loading import load_image
from mama_monai.data.presets import get_preset
from mama_monai.data.slicing import slice_volume


def phantom(slices: int, size: int, seed: int = 0) -> np.ndarray:
    """Stored values (slices, rows, columns), int16, HU + 1024: air, a body ellipse, two lungs, noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    hu = np.full((size, size), -1000.0)
    hu[(x / 0.85) ** 2 + (y / 0.65) ** 2 < 1] = 40.0
    for cx in (-0.4, 0.4):
        hu[((x - cx) / 0.3) ** 2 + (y / 0.45) ** 2 < 1] = -850.0
    volume = np.repeat(hu[None], slices, axis=0) + rng.normal(0, 20, (slices, size, size))
    return np.clip(volume + 1024, 0, 4095).astype(np.int16)


def write_series(folder: Path, volume: np.ndarray, spacing=(0.7, 0.7, 1.25)) -> None:
    """A CT series with shuffled file names, one file per slice."""
    series_uid, study_uid = generate_uid(), generate_uid()
    order = np.random.default_rng(1).permutation(volume.shape[0])
    for k in range(volume.shape[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"f{order[k]:04d}"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = study_uid, series_uid, "CT"
        ds.Rows, ds.Columns = volume.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelSpacing = [spacing[0], spacing[1]]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-180.0, -180.0, k * spacing[2]]
        ds.InstanceNumber = int(order[k]) + 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = volume[k].tobytes()
        ds.save_as(folder / f"f{order[k]:04d}", enforce_file_format=True)


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up: imports, page cache
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=64, help="slices in the synthetic volume (default 64)")
    parser.add_argument("--matrix", type=int, default=512, help="rows = columns (default 512)")
    parser.add_argument("--size", type=int, default=228, help="model input H = W for the preset (default 228)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per row (median; default 3)")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(1)
    preset = get_preset("ct_lung", spatial_size=(args.size, args.size), spatial_dims=3)
    volume = phantom(args.slices, args.matrix)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "series").mkdir()
        write_series(root / "series", volume)
        hu = (volume.astype(np.int16) - 1024).transpose(2, 1, 0)  # (x, y, z)
        affine = np.diag([-0.7, -0.7, 1.25, 1.0])
        nib.save(nib.Nifti1Image(hu, affine), root / "volume.nii.gz")
        nib.save(nib.Nifti1Image(hu, affine), root / "volume.nii")
        inputs = [
            ("DICOM series (uncompressed)", root / "series"),
            ("NIfTI .nii.gz (int16)", root / "volume.nii.gz"),
            ("NIfTI .nii (int16)", root / "volume.nii"),
        ]
        rows = []
        for name, path in inputs:
            decode = median_seconds(lambda p=path: load_image(p), args.repeats)
            full = median_seconds(lambda p=path: slice_volume(preset({"image": load_image(p)})), args.repeats)
            rows.append((name, decode, full))

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    print(
        f"Data loading, one core: {args.slices} slices of {args.matrix}x{args.matrix} int16, "
        f"ct_lung preset to {args.size}x{args.size}, median of {args.repeats}"
    )
    print(
        f"CPU: {cpu}; torch {torch.__version__}, SimpleITK {sitk.Version.VersionString()}, "
        f"pydicom {pydicom.__version__}, Python {platform.python_version()}"
    )
    print()
    print("| input | decode (slices/s) | decode + preprocess + slice (slices/s) | s per volume (full) |")
    print("| --- | ---: | ---: | ---: |")
    for name, decode, full in rows:
        print(f"| {name} | {args.slices / decode:.0f} | {args.slices / full:.0f} | {full:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
