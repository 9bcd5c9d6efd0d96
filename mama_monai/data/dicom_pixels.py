"""Read one DICOM file (single- or multi-frame) into a ``SimpleITK.Image`` with display-ready values.

A SimpleITK/GDCM series read applies RescaleSlope/Intercept only. A single file — typically a
radiograph (CR/DX) — needs the whole grayscale pipeline of DICOM PS3.3 C.11, done here with pydicom:

1. decode the stored values: pydicom first; where pydicom lacks a plugin for the transfer syntax
   (JPEG-LS, JPEG lossless, ...), SimpleITK's GDCM, whose output is mapped back to stored values
   (GDCM applies the rescale and, since ITK 5.3, turns MONOCHROME1 into MONOCHROME2 — both undone
   here so that the two decoders give the same result; tested);
2. modality LUT: ``pydicom.pixels.apply_modality_lut`` (RescaleSlope/Intercept or Modality LUT
   Sequence) — CT values come out in HU;
3. VOI LUT or window: ``pydicom.pixels.apply_voi_lut`` (first window), by default only for
   projection radiographs (Modality CR, DX, MG, RF, XA, IO, PX, RG, DF): a CT or MR keeps its
   physical values;
4. PhotometricInterpretation MONOCHROME1 inverted over the value range the first steps can produce,
   so that air is dark as in MONOCHROME2 — never over the image's own min/max.

Colour images (SamplesPerPixel 3) are returned as RGB vector images without LUTs. Geometry
(origin, spacing, direction, including multi-frame spacing) comes from SimpleITK's header reader,
falling back to ImagePositionPatient / ImageOrientationPatient / PixelSpacing when GDCM cannot
parse the header. The result is 3D: ``(columns, rows, frames)`` in SimpleITK's index order.

Example:
    >>> from pydicom.data import get_testdata_file
    >>> image = read_dicom_file(get_testdata_file("CT_small.dcm", download=False))
    >>> image.GetSize()
    (128, 128, 1)
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from mama_monai.data.errors import ImageLoadError, UnsupportedTransferSyntaxError, first_line

__all__ = ["read_dicom_file", "RADIOGRAPH_MODALITIES", "META_PREFIX"]

#: Modalities whose VOI LUT / window is applied by default (projection radiography).
RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "MG", "RF", "XA", "IO", "PX", "RG", "DF"})
#: Prefix of the SimpleITK metadata keys this package sets (and copies into MONAI's metadata).
META_PREFIX = "mama_"


def _read_dataset(path: Path) -> pydicom.Dataset:
    try:
        return pydicom.dcmread(path)
    except InvalidDicomError:
        try:
            ds = pydicom.dcmread(path, force=True)
        except Exception as err:
            raise ImageLoadError(path, f"not a DICOM file ({first_line(err)})") from err
        if "Rows" not in ds:
            raise ImageLoadError(path, "not a DICOM file (no DICOM preamble and no image attributes)") from None
        return ds
    except Exception as err:
        raise ImageLoadError(
            path, f"truncated or corrupt DICOM file ({type(err).__name__}: {first_line(err)})"
        ) from err


def _transfer_syntax(ds: pydicom.Dataset) -> tuple[str, str]:
    uid = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if uid is None:
        return "1.2.840.10008.1.2", "Implicit VR Little Endian"
    name = uid.name if uid.name != str(uid) else "unknown transfer syntax"
    return str(uid), name


def _stored_range(ds: pydicom.Dataset) -> tuple[float, float] | None:
    bits = ds.get("BitsStored")
    if bits is None:
        return None
    if int(ds.get("PixelRepresentation", 0)) == 0:
        return 0.0, float(2 ** int(bits) - 1)
    return float(-(2 ** (int(bits) - 1))), float(2 ** (int(bits) - 1) - 1)


def _decode(path: Path, ds: pydicom.Dataset) -> np.ndarray:
    """Stored values, shape ``(frames, rows, columns[, samples])``."""
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    color = int(ds.get("SamplesPerPixel", 1)) > 1
    try:
        arr = ds.pixel_array
    except ValueError as err:
        raise ImageLoadError(path, f"truncated or corrupt pixel data ({first_line(err)})") from err
    except (NotImplementedError, RuntimeError, ImportError) as pydicom_err:
        arr = _decode_with_gdcm(path, ds, pydicom_err)
        return arr if arr.ndim == (4 if color else 3) else arr[None]
    if frames == 1:
        arr = arr[None]
    return arr


def _decode_with_gdcm(path: Path, ds: pydicom.Dataset, pydicom_err: BaseException) -> np.ndarray:
    try:
        values = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    except RuntimeError as gdcm_err:
        uid, name = _transfer_syntax(ds)
        detail = f"pydicom: {first_line(pydicom_err)}; SimpleITK/GDCM: {first_line(gdcm_err)}"
        raise UnsupportedTransferSyntaxError(path, uid, name, detail) from gdcm_err
    if int(ds.get("SamplesPerPixel", 1)) > 1 or "ModalityLUTSequence" in ds:
        return values  # GDCM applies neither a rescale nor an inversion here
    slope, intercept = float(ds.get("RescaleSlope", 1.0)), float(ds.get("RescaleIntercept", 0.0))
    stored = (values.astype(np.float64) - intercept) / slope
    stored_range = _stored_range(ds)
    if ds.get("PhotometricInterpretation") == "MONOCHROME1" and stored_range is not None:
        stored = stored_range[1] + stored_range[0] - stored
    return np.rint(stored).astype(np.int32)


def _display_values(stored: np.ndarray, ds: pydicom.Dataset, apply_voi: bool | None) -> np.ndarray:
    use_voi = apply_voi if apply_voi is not None else str(ds.get("Modality", "")).upper() in RADIOGRAPH_MODALITIES
    has_voi = "VOILUTSequence" in ds or "WindowCenter" in ds

    def pipeline(values: np.ndarray) -> np.ndarray:
        out = apply_modality_lut(values, ds)
        if use_voi and has_voi:
            out = apply_voi_lut(out, ds, index=0)
        return np.asarray(out, dtype=np.float64)

    out = pipeline(stored)
    if ds.get("PhotometricInterpretation") == "MONOCHROME1":
        stored_range = _stored_range(ds)
        extremes = np.asarray(stored_range if stored_range is not None else (stored.min(), stored.max()))
        ends = pipeline(extremes.astype(stored.dtype if stored_range is None else np.int64))
        out = float(ends.min()) + float(ends.max()) - out
    return out.astype(np.float32)


def _geometry_from_header(path: Path, ds: pydicom.Dataset) -> tuple[tuple, tuple, tuple]:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
        if reader.GetDimension() == 3:
            return reader.GetOrigin(), reader.GetSpacing(), reader.GetDirection()
    except RuntimeError:
        reader = None  # ITK cannot read this header: fall back to pydicom's tags below
    spacing_rc = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing") or (1.0, 1.0)
    spacing = (float(spacing_rc[1]), float(spacing_rc[0]), float(ds.get("SpacingBetweenSlices", 1.0) or 1.0))
    origin = tuple(float(v) for v in ds.get("ImagePositionPatient", (0.0, 0.0, 0.0)))
    iop = [float(v) for v in ds.get("ImageOrientationPatient", (1, 0, 0, 0, 1, 0))]
    row, col = np.asarray(iop[:3]), np.asarray(iop[3:])
    direction = np.stack([row, col, np.cross(row, col)], axis=1)  # columns = axis directions
    return origin, spacing, tuple(direction.ravel())


def read_dicom_file(path: str | PathLike, apply_voi_lut: bool | None = None) -> sitk.Image:
    """Read one DICOM image file with the grayscale pipeline of the module docstring.

    Args:
        path: a DICOM file (any transfer syntax that pydicom or GDCM decodes).
        apply_voi_lut: apply the VOI LUT / first window. ``None`` (default): only for radiograph
            modalities (:data:`RADIOGRAPH_MODALITIES`); ``True``/``False``: always / never.

    Returns:
        A 3D ``SimpleITK.Image`` of size ``(columns, rows, frames)``, float32 for grayscale
        (physical units such as HU unless a VOI LUT was applied), uint8 RGB vectors for colour.
        Metadata keys ``mama_modality``, ``mama_series_uid``, ``mama_series_description``,
        ``mama_voi_applied``, ``mama_photometric`` describe the file (no patient data).

    Raises:
        ImageLoadError: not DICOM, truncated, or without pixel data.
        UnsupportedTransferSyntaxError: no decoder for its transfer syntax.
    """
    path = Path(path)
    ds = _read_dataset(path)
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise ImageLoadError(path, "DICOM file holds no pixel data; expected a DICOM image")
    stored = _decode(path, ds)
    color = int(ds.get("SamplesPerPixel", 1)) > 1
    values = stored if color else _display_values(stored, ds, apply_voi_lut)
    origin, spacing, direction = _geometry_from_header(path, ds)
    image = sitk.GetImageFromArray(values, isVector=color)
    if image.GetDimension() != 3:
        raise ImageLoadError(path, f"decoded pixel data has shape {values.shape}; expected (frames, rows, columns)")
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    modality = str(ds.get("Modality", "")).upper()
    voi = apply_voi_lut if apply_voi_lut is not None else modality in RADIOGRAPH_MODALITIES
    has_voi = "VOILUTSequence" in ds or "WindowCenter" in ds
    meta = {
        "modality": modality,
        "series_uid": str(ds.get("SeriesInstanceUID", "")),
        "series_description": str(ds.get("SeriesDescription", "")),
        "voi_applied": str(bool(voi and has_voi and not color)),
        "photometric": str(ds.get("PhotometricInterpretation", "")),
    }
    for key, value in meta.items():
        image.SetMetaData(META_PREFIX + key, value)
    return image
