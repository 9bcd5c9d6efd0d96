"""A MONAI ``ImageReader`` built on SimpleITK: DICOM series folders, DICOM files, NIfTI, NRRD, MetaImage, PNG/JPEG/TIFF.

MONAI's ``ITKReader`` needs the ``itk`` package; this project's stack is SimpleITK, so this reader
gives ``LoadImage`` / ``LoadImaged`` the same behaviour on SimpleITK (DESIGN.md §3):

- **array layout** as ``ITKReader(reverse_indexing=False)``: spatial axes in ITK index order
  ``(x, y[, z])`` — i.e. ``(W, H[, D])`` — the same order as ``NibabelReader`` gives for NIfTI;
  colour channels last with ``original_channel_dim = -1``, grayscale ``"no_channel"``;
- **affine** as ``ITKReader(affine_lps_to_ras=True)``: ``direction @ diag(spacing)`` with the
  origin as translation, converted from ITK's LPS to RAS (first two rows negated), always 4×4
  (a 2D image gets the 3D identity in its third row and column); ``space = RAS``. ``SaveImage``
  therefore writes results back on the original grid, and a NIfTI read here has nibabel's affine.
- **metadata** without patient data: ``affine``, ``original_affine``, ``spatial_shape``,
  ``spacing``, ``space``, ``original_channel_dim``, ``source_format`` (``dicom_series``,
  ``dicom_file``, ``nifti``, ``image``) and, for DICOM, ``modality``, ``series_uid``,
  ``series_description``. ``LoadImage`` adds ``filename_or_obj``.

Inputs, chosen by what the path is (not only by its suffix):

- a folder → DICOM series (:mod:`mama_monai.data.dicom_series`): split by SeriesInstanceUID,
  ``series_uid`` chooses one, slices ordered by position, validated, read by
  ``SimpleITK.ImageSeriesReader`` (GDCM: rescale applied, JPEG/JPEG 2000/JPEG-LS decoded);
  a series of one (multi-frame) file is read as a DICOM file;
- a DICOM file (any suffix or none) → :func:`mama_monai.data.dicom_pixels.read_dicom_file`
  (modality LUT, VOI LUT for radiographs, MONOCHROME1 inverted); 3D with ``frames`` slices;
- ``.nii`` / ``.nii.gz`` → read with nibabel (as MONAI's ``NibabelReader``: ``img.affine`` is
  already RAS), because ITK refuses NIfTI files whose affine is not orthonormal (sheared), which
  nibabel and MONAI accept; 2D or 3D, a 4D image with more than one volume is refused;
- ``.nrrd`` / ``.nhdr`` (3D Slicer's default) and ``.mha`` / ``.mhd`` (ITK's MetaImage) → read by
  ``SimpleITK.ReadImage`` with their origin, spacing and direction (``source_format`` ``volume``);
- ``.png`` / ``.jpg`` / ``.jpeg`` / ``.tif`` / ``.tiff`` → 2D, at the file's own bit depth (a 16-bit
  radiograph keeps its 0..65535 values; the preset's window scales them).

NaN policy: non-finite voxels (NaN, ±inf) raise :class:`ImageLoadError` naming the file and the
count (``nan_policy="error"``, default: a silent fill would create false anomalies), or are
replaced by the smallest finite value with a warning (``nan_policy="fill"``).

Pin this reader: ``LoadImage(reader=SimpleITKReader())`` falls back to MONAI's other readers when
this one raises (PydicomReader would then read a rejected series silently). Use
:func:`mama_monai.data.loading.load_image` or :class:`mama_monai.data.loading.LoadMedicalImaged`,
which pass the reader at call time so its errors reach the caller unchanged.

Example:
    >>> from monai.transforms import LoadImage
    >>> reader = SimpleITKReader(series_uid=None)
    >>> image = LoadImage(reader=reader, ensure_channel_first=True)("ct_folder", reader=reader)  # doctest: +SKIP
    >>> image.shape, image.affine  # (1, W, H, D), 4x4 RAS  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk
from monai.data import ImageReader
from monai.data.utils import affine_to_spacing, orientation_ras_lps, to_affine_nd
from monai.utils import MetaKeys, SpaceKeys, ensure_tuple

from mama_monai.data.dicom_pixels import META_PREFIX, read_dicom_file
from mama_monai.data.dicom_series import (
    describe_non_image,
    find_dicom_series,
    is_dicom_file,
    select_series,
    slice_gap_deviation,
    validate_series,
)
from mama_monai.data.errors import ImageLoadError, first_line

__all__ = ["SimpleITKReader", "NIFTI_SUFFIXES", "VOLUME_SUFFIXES", "IMAGE_SUFFIXES", "INPUT_SUFFIXES", "DEFAULT_MAX_IMAGE_BYTES"]

NIFTI_SUFFIXES = (".nii", ".nii.gz")
#: NRRD (3D Slicer) and MetaImage (ITK): read by SimpleITK with their geometry
VOLUME_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
#: every file suffix an input may have besides DICOM (which is recognised by its content)
INPUT_SUFFIXES = NIFTI_SUFFIXES + VOLUME_SUFFIXES + IMAGE_SUFFIXES
#: default ``max_image_bytes``: 8 GiB of voxel data, far above any CT or MR volume (a 512 x 512 x 2000
#: CT is 1 GiB); a header claiming more is refused before anything is allocated
DEFAULT_MAX_IMAGE_BYTES = 8 * 2**30
_NAN_POLICIES = ("error", "fill")
#: relative deviation of a slice gap from the median above which the reader warns (ITK would print
#: "Non uniform sampling" for any deviation; larger ones than spacing_tolerance are refused)
_GAP_WARNING = 1e-3


@dataclass
class _Loaded:
    """What :meth:`SimpleITKReader.read` returns for one path (consumed by ``get_data``)."""

    array: np.ndarray  # (W, H[, D][, C])
    affine: np.ndarray  # 4x4, RAS
    vector: bool  # channels last
    extra: dict = field(default_factory=dict)  # source_format, modality, series_uid, ...

    @property
    def spatial_shape(self) -> np.ndarray:
        return np.asarray(self.array.shape[:-1] if self.vector else self.array.shape)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


class SimpleITKReader(ImageReader):
    """Load DICOM series/files, NIfTI, NRRD, MetaImage and PNG/JPEG/TIFF with SimpleITK, with MONAI's ITKReader conventions.

    Args:
        series_uid: SeriesInstanceUID to read from a folder holding several series (default
            ``None``: the folder must hold exactly one; otherwise the error lists the UIDs).
        apply_voi_lut: for single DICOM files, apply the VOI LUT / window: ``None`` (default)
            only for radiograph modalities (CR, DX, ...), ``True``/``False`` always/never.
        nan_policy: ``"error"`` (default) or ``"fill"`` for non-finite voxels (module docstring).
        to_grayscale: convert RGB(A) images to one luminance channel (ITU-R BT.601 weights
            0.299, 0.587, 0.114; alpha dropped). Default ``False``: channels kept, last.
        spacing_tolerance: accepted relative deviation of a series' slice gaps (default 0.1);
            larger gaps (a missing slice) raise :class:`ImageLoadError`; a deviation above 0.1 % of
            the gap is read on the uniform grid with one warning (ITK's own "Non uniform sampling"
            message is silenced).
        max_image_bytes: largest voxel data a NIfTI header may claim (shape x bytes per voxel;
            default :data:`DEFAULT_MAX_IMAGE_BYTES`, 8 GiB); more raises :class:`ImageLoadError`
            before anything is allocated.

    Raises:
        ValueError: an argument out of range.
    """

    def __init__(
        self,
        series_uid: str | None = None,
        apply_voi_lut: bool | None = None,
        nan_policy: str = "error",
        to_grayscale: bool = False,
        spacing_tolerance: float = 0.1,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    ) -> None:
        super().__init__()
        if nan_policy not in _NAN_POLICIES:
            raise ValueError(f"nan_policy must be one of {_NAN_POLICIES}, got {nan_policy!r}.")
        if not 0 < spacing_tolerance < 1:
            raise ValueError(f"spacing_tolerance must be in (0, 1), got {spacing_tolerance!r}.")
        if isinstance(max_image_bytes, bool) or not isinstance(max_image_bytes, int) or max_image_bytes < 1:
            raise ValueError(f"max_image_bytes must be a positive int, got {max_image_bytes!r}.")
        self.max_image_bytes = max_image_bytes
        self.series_uid = series_uid
        self.apply_voi_lut = apply_voi_lut
        self.nan_policy = nan_policy
        self.to_grayscale = to_grayscale
        self.spacing_tolerance = spacing_tolerance

    def verify_suffix(self, filename: Sequence[PathLike] | PathLike) -> bool:
        """Whether every path is a folder, a NIfTI/NRRD/MetaImage/PNG/JPEG/TIFF name or a DICOM file."""
        for name in ensure_tuple(filename):
            path = Path(name)
            if not (path.is_dir() or _suffix(path) in INPUT_SUFFIXES or _is_dicom(path)):
                return False
        return True

    def read(self, data: Sequence[PathLike] | PathLike, **kwargs) -> _Loaded | list[_Loaded]:
        """Read one path (or several, later stacked as channels).

        Args:
            data: a path or a sequence of paths.
            kwargs: ``series_uid`` overrides the constructor's value for this call.

        Returns:
            Opaque objects for :meth:`get_data`.

        Raises:
            ImageLoadError: the path is missing, unsupported or invalid (message names it).
        """
        series_uid = kwargs.get("series_uid", self.series_uid)
        images = [self._read_one(Path(name), series_uid) for name in ensure_tuple(data)]
        return images if len(images) > 1 else images[0]

    def _read_one(self, path: Path, series_uid: str | None) -> _Loaded:
        if not path.exists():
            raise ImageLoadError(path, "no such file or folder")
        if path.is_dir():
            loaded = _from_sitk(self._read_series(path, series_uid))
        elif _suffix(path) in NIFTI_SUFFIXES:
            loaded = _read_nifti(path, self.max_image_bytes)
        elif _suffix(path) in VOLUME_SUFFIXES + IMAGE_SUFFIXES:
            try:
                image = sitk.ReadImage(str(path))
            except RuntimeError as err:
                raise ImageLoadError(path, f"cannot read image file ({first_line(err)})") from err
            kind = "volume" if _suffix(path) in VOLUME_SUFFIXES else "image"
            image.SetMetaData(META_PREFIX + "source_format", kind)
            loaded = _from_sitk(image)
        elif _is_dicom(path):
            image = read_dicom_file(path, apply_voi_lut=self.apply_voi_lut)
            image.SetMetaData(META_PREFIX + "source_format", "dicom_file")
            loaded = _from_sitk(image)
        elif (what := describe_non_image(path)) is not None:
            raise ImageLoadError(
                path, f"DICOM file holds no image (no pixel data: {what}); expected a DICOM image (CT, MR, radiograph)"
            )
        else:
            raise ImageLoadError(
                path,
                f"unsupported file type (suffix {_suffix(path) or 'none'!r}, not DICOM); expected a DICOM "
                f"folder or file, {', '.join(INPUT_SUFFIXES)}",
            )
        if self.to_grayscale and loaded.vector:
            weights = np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
            channels = loaded.array.shape[-1]
            rgb = loaded.array.astype(np.float32)
            loaded.array = rgb[..., :3] @ weights if channels >= 3 else rgb[..., 0]
            loaded.vector = False
        self._check_finite(path, loaded)
        return loaded

    def _read_series(self, folder: Path, series_uid: str | None) -> sitk.Image:
        series = select_series(find_dicom_series(folder), folder, series_uid)
        if len(series.files) == 1:
            image = read_dicom_file(series.files[0], apply_voi_lut=self.apply_voi_lut)
        else:
            validate_series(series, folder, tolerance=self.spacing_tolerance)
            image = _execute_series_reader(folder, series)
        for key, value in (
            ("source_format", "dicom_series"),
            ("modality", series.modality),
            ("series_uid", series.uid),
            ("series_description", series.description),
        ):
            image.SetMetaData(META_PREFIX + key, value)
        return image

    def _check_finite(self, path: Path, loaded: _Loaded) -> None:
        array = loaded.array
        if not np.issubdtype(array.dtype, np.floating):
            return
        bad = ~np.isfinite(array)
        count = int(bad.sum())
        if count == 0:
            return
        if self.nan_policy == "error":
            raise ImageLoadError(
                path,
                f"{count} non-finite voxel(s) (NaN or inf) out of {array.size}; expected finite intensities "
                "(use nan_policy='fill' to replace them by the smallest finite value)",
            )
        finite = array[~bad]
        fill = float(finite.min()) if finite.size else 0.0
        warnings.warn(f"{path}: replaced {count} non-finite voxel(s) by {fill:g} (nan_policy='fill')", stacklevel=4)
        loaded.array = np.where(bad, fill, array).astype(array.dtype)

    def get_data(self, img: _Loaded | Sequence[_Loaded]) -> tuple[np.ndarray, dict]:
        """Array in ``(W, H[, D][, C])`` order and MONAI metadata (see module docstring).

        Several images are stacked on a new first axis (``original_channel_dim = 0``); they must
        share spatial shape and affine.
        """
        items = ensure_tuple(img)
        first = items[0]
        for other in items[1:]:
            if not np.array_equal(other.spatial_shape, first.spatial_shape) or not np.allclose(
                other.affine, first.affine
            ):
                raise ValueError(
                    "images stacked as channels must share spatial_shape and affine, got "
                    f"{first.spatial_shape} and {other.spatial_shape}."
                )
        meta = dict(first.extra)
        meta.update(
            {
                "spacing": affine_to_spacing(first.affine, r=len(first.spatial_shape)),
                MetaKeys.ORIGINAL_AFFINE: first.affine.copy(),
                MetaKeys.AFFINE: first.affine.copy(),
                MetaKeys.SPATIAL_SHAPE: first.spatial_shape,
                MetaKeys.SPACE: SpaceKeys.RAS,
                MetaKeys.ORIGINAL_CHANNEL_DIM: -1 if first.vector else float("nan"),
            }
        )
        if len(items) == 1:
            return first.array, meta
        meta[MetaKeys.ORIGINAL_CHANNEL_DIM] = 0
        return np.stack([i.array for i in items], axis=0), meta


def _from_sitk(image: sitk.Image) -> _Loaded:
    """ITKReader's conventions: index order (x, y[, z]), affine LPS→RAS, 4x4."""
    dim = image.GetDimension()
    vector = image.GetNumberOfComponentsPerPixel() > 1
    view = sitk.GetArrayFromImage(image)  # (z, y, x[, c])
    axes = tuple(reversed(range(dim))) + ((dim,) if vector else ())
    spacing = np.asarray(image.GetSpacing(), dtype=np.float64)
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(dim, dim)
    affine = np.eye(dim + 1)
    affine[:dim, :dim] = direction @ np.diag(spacing)
    affine[:dim, dim] = image.GetOrigin()
    extra = {k[len(META_PREFIX) :]: image.GetMetaData(k) for k in image.GetMetaDataKeys() if k.startswith(META_PREFIX)}
    return _Loaded(
        array=np.ascontiguousarray(np.transpose(view, axes)),
        affine=orientation_ras_lps(to_affine_nd(3, affine)),
        vector=vector,
        extra=extra,
    )


def _execute_series_reader(folder: Path, series) -> sitk.Image:
    """SimpleITK's series reader without ITK's multi-line "Non uniform sampling" chatter on stderr:
    a gap deviation within the tolerance is reported once, as a Python warning of ours."""
    spacing, deviation = slice_gap_deviation(series)
    if deviation > _GAP_WARNING * abs(spacing):
        warnings.warn(
            f"{folder}: series {series.uid} has slice gaps of {spacing:.3f} mm varying by up to {deviation:.3f} mm "
            f"(within the spacing tolerance); read on a uniform grid of {spacing:.3f} mm",
            stacklevel=4,
        )
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(list(series.files))
    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        return reader.Execute()
    except RuntimeError as err:
        raise _series_read_error(folder, series.files, err) from err
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)


def _check_claimed_size(path: Path, img: nib.spatialimages.SpatialImage, limit: int) -> None:
    """Refuse a header that claims more voxel data than ``limit`` bytes, or than the file holds."""
    header = img.header
    shape = tuple(int(d) for d in header.get_data_shape())
    itemsize = header.get_data_dtype().itemsize
    claimed = int(np.prod(shape, dtype=object)) * itemsize if shape else 0
    size = f"{claimed:,} bytes" + (f", {_human(claimed)}" if claimed >= 1024 else "")
    described = f"{'x'.join(map(str, shape))} voxels of {header.get_data_dtype()} ({size})"
    if claimed > limit:
        raise ImageLoadError(
            path,
            f"the NIfTI header claims {described}, more than max_image_bytes={limit:,} ({_human(limit)}); "
            "the header is corrupt or the image too large to load",
        )
    if not str(path).lower().endswith(".gz"):
        available = path.stat().st_size - int(getattr(img.dataobj, "offset", header.get_data_offset()))
        if claimed > available:
            raise ImageLoadError(
                path, f"the NIfTI header claims {described} but the file holds {max(available, 0):,} bytes of data: truncated or corrupt"
            )


def _human(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"
    return f"{n} bytes"


def _read_nifti(path: Path, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> _Loaded:
    """nibabel, as MONAI's NibabelReader: array in voxel index order, ``img.affine`` (RAS); the size
    the header claims is checked before the data are read."""
    try:
        img = nib.load(str(path))
    except Exception as err:
        raise ImageLoadError(path, f"cannot read NIfTI file ({type(err).__name__}: {first_line(err)})") from err
    _check_claimed_size(path, img, max_bytes)
    try:
        array = np.asanyarray(img.dataobj)
    except Exception as err:
        raise ImageLoadError(path, f"cannot read NIfTI file ({type(err).__name__}: {first_line(err)})") from err
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim > 3 or array.ndim < 2:
        raise ImageLoadError(
            path, f"{array.ndim}D image of shape {tuple(array.shape)}; expected a 2D or 3D image (one volume)"
        )
    affine = np.asarray(img.affine, dtype=np.float64)
    if array.ndim == 2:  # keep the 3D affine's in-plane part, as a 2D image's 4x4 affine
        affine = affine.copy()
    return _Loaded(array=np.ascontiguousarray(array), affine=affine, vector=False, extra={"source_format": "nifti"})


def _is_dicom(path: Path) -> bool:
    return path.is_file() and is_dicom_file(path)


def _series_read_error(folder: Path, files: Sequence[str], err: RuntimeError) -> ImageLoadError:
    """Name the file SimpleITK failed on (checked one by one, only on this error path)."""
    for name in files:
        try:
            read_dicom_file(name)
        except ImageLoadError as file_err:
            return ImageLoadError(folder, f"cannot read the series: {file_err}")
    return ImageLoadError(folder, f"SimpleITK cannot read the series ({first_line(err)})")
