"""Find the DICOM series in a folder, choose one and check that it forms a regular volume.

A PACS export often holds several series (scout, thin and thick reconstructions, dose reports) in
one folder tree. :func:`find_dicom_series` reads only the headers (pydicom, ``stop_before_pixels``),
groups files by SeriesInstanceUID and orders each series' slices by position along the slice
normal, ``dot(ImagePositionPatient, row_cosines × column_cosines)`` — the rule of GDCM's
``IPPSorter`` that SimpleITK's ``GetGDCMSeriesFileNames`` applies — never by file name.
:func:`select_series` picks one series (by UID, or the only one) and :func:`validate_series`
rejects what would give a wrong geometry.

Policy for an irregular series (decided here, documented in the README):

- **missing slice / irregular spacing → error.** SimpleITK builds a volume with one uniform slice
  spacing, so every slice after a gap would sit at the wrong physical position and a result
  written back on that grid would not overlay the original. The error names the two files around
  the gap, the expected spacing and the gap found.
- **mixed sizes or orientations, duplicate positions → error** naming the files.
- **no ImagePositionPatient** in a multi-file series → ordered by InstanceNumber with a warning
  (the slice spacing is then unknown and set to 1 by the reader).

Example:
    >>> series = find_dicom_series("/data/patient1")  # doctest: +SKIP
    >>> chosen = select_series(series, "/data/patient1", series_uid=None)  # doctest: +SKIP
    >>> validate_series(chosen)  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from mama_monai.data.errors import ImageLoadError

__all__ = [
    "SeriesInfo",
    "describe_non_image",
    "find_dicom_series",
    "is_dicom_file",
    "select_series",
    "slice_gap_deviation",
    "validate_series",
]

_HEADER_TAGS = [
    "SeriesInstanceUID",
    "SeriesDescription",
    "Modality",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "InstanceNumber",
    "SamplesPerPixel",
]


@dataclass(frozen=True)
class SeriesInfo:
    """One DICOM series found on disk.

    Attributes:
        uid: SeriesInstanceUID.
        files: the series' files, ordered by slice position (see module docstring).
        modality: Modality (0008,0060), e.g. ``"CT"``, ``"CR"``; ``""`` when absent.
        description: SeriesDescription, ``""`` when absent.
        rows: Rows of every file (validated by :func:`validate_series`).
        columns: Columns of every file.
        number_of_frames: frames in the first file (1 for single-frame files).
        positions: slice positions along the normal in mm, in ``files`` order; empty when the
            files carry no ImagePositionPatient.
        sizes: ``(rows, columns)`` of each file, in ``files`` order.
        orientations: ImageOrientationPatient of each file (6 floats), ``None`` where absent.
    """

    uid: str
    files: tuple[str, ...]
    modality: str = ""
    description: str = ""
    rows: int = 0
    columns: int = 0
    number_of_frames: int = 1
    positions: tuple[float, ...] = ()
    sizes: tuple[tuple[int, int], ...] = field(default=(), repr=False)
    orientations: tuple[tuple[float, ...] | None, ...] = field(default=(), repr=False)

    def summary(self) -> str:
        """One line naming the series for error messages and listings (no patient data)."""
        desc = f" '{self.description}'" if self.description else ""
        return f"{self.uid} ({self.modality or '?'}{desc}, {len(self.files)} file(s))"


def is_dicom_file(path: str | PathLike) -> bool:
    """Whether ``path`` is a file holding a DICOM image header (preamble or not).

    Args:
        path: any file.

    Returns:
        True when pydicom reads a header with Rows from it.
    """
    return _read_header(Path(path)) is not None


def _read_header(path: Path) -> pydicom.Dataset | None:
    """The header of a DICOM image file, or ``None`` for a non-DICOM or non-image file."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
    except InvalidDicomError:  # no 'DICM' preamble: old files may still be DICOM
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_HEADER_TAGS, force=True)
        except Exception:
            return None
        if "SeriesInstanceUID" not in ds:
            return None
    except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError):
        return None
    if "Rows" not in ds or "Columns" not in ds:  # DICOMDIR, structured reports, presentation states
        return None
    return ds


def describe_non_image(path: str | PathLike) -> str | None:
    """What a DICOM file without an image is (``"RT Structure Set Storage, Modality RTSTRUCT"``), or
    ``None`` when ``path`` is not DICOM at all (or is a DICOM image). For error messages: a structured
    report, an RT structure set or a DICOMDIR is DICOM, only without pixel data.

    Args:
        path: a file that :func:`is_dicom_file` rejected.
    """
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True, specific_tags=["SOPClassUID", "Modality", "Rows"])
    except Exception:
        return None
    has_meta = bool(getattr(ds, "file_meta", None)) and "TransferSyntaxUID" in ds.file_meta
    if "Rows" in ds or not (has_meta or "SOPClassUID" in ds):
        return None
    sop = ds.get("SOPClassUID")
    if sop is None and has_meta:
        sop = ds.file_meta.get("MediaStorageSOPClassUID")
    what = getattr(sop, "name", None) or (str(sop) if sop else "unknown SOP class")
    modality = str(ds.get("Modality", "") or "")
    return f"{what}{f', Modality {modality}' if modality else ''}"


def slice_gap_deviation(series: SeriesInfo) -> tuple[float, float]:
    """``(median gap, largest deviation of a gap from it)`` in mm; ``(0, 0)`` without positions."""
    if len(series.positions) < 2:
        return 0.0, 0.0
    gaps = np.diff(np.asarray(series.positions))
    spacing = float(np.median(gaps))
    return spacing, float(np.max(np.abs(gaps - spacing)))


def _normal(orientation: tuple[float, ...]) -> np.ndarray:
    row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    return np.cross(row, col)


def find_dicom_series(folder: str | PathLike, recursive: bool = True) -> list[SeriesInfo]:
    """Group the DICOM image files under ``folder`` by SeriesInstanceUID.

    Non-DICOM files (and DICOM files without an image, e.g. ``DICOMDIR``) are skipped.

    Args:
        folder: a folder, e.g. a PACS export.
        recursive: also look in sub-folders (default True).

    Returns:
        One :class:`SeriesInfo` per series, largest first, files ordered by slice position.

    Raises:
        ImageLoadError: ``folder`` is not a folder, is empty or holds no DICOM image.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ImageLoadError(root, "not a folder; expected a folder of DICOM files")
    walker = root.rglob("*") if recursive else root.iterdir()
    candidates = sorted(p for p in walker if p.is_file())
    if not candidates:
        raise ImageLoadError(root, "folder is empty; expected DICOM files")
    groups: dict[str, list[tuple[Path, pydicom.Dataset]]] = {}
    for path in candidates:
        ds = _read_header(path)
        if ds is not None:
            groups.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append((path, ds))
    if not groups:
        examples = ", ".join(p.name for p in candidates[:3])
        non_images = [d for d in map(describe_non_image, candidates[:50]) if d]
        if non_images:
            raise ImageLoadError(
                root,
                f"its DICOM files hold no image (no pixel data: e.g. {non_images[0]}); expected DICOM image files "
                "(CT, MR, radiographs)",
            )
        raise ImageLoadError(
            root, f"no DICOM image among its {len(candidates)} file(s) (e.g. {examples}); expected DICOM files"
        )
    series = [_make_series(uid, members) for uid, members in groups.items()]
    return sorted(series, key=lambda s: (-len(s.files), s.uid))


def _make_series(uid: str, members: list[tuple[Path, pydicom.Dataset]]) -> SeriesInfo:
    first = members[0][1]
    orientation = first.get("ImageOrientationPatient")
    has_position = all("ImagePositionPatient" in ds for _, ds in members)
    if len(members) > 1 and has_position and orientation is not None:
        normal = _normal(tuple(float(v) for v in orientation))
        keyed = [(float(np.dot(np.asarray(ds.ImagePositionPatient, float), normal)), p, ds) for p, ds in members]
        keyed.sort(key=lambda item: item[0])
        positions = tuple(k for k, _, _ in keyed)
        ordered = [(p, ds) for _, p, ds in keyed]
    else:
        if len(members) > 1:
            missing = [p.name for p, ds in members if "InstanceNumber" not in ds]
            if missing:
                raise ImageLoadError(
                    members[0][0].parent,
                    f"series {uid}: files without ImagePositionPatient nor InstanceNumber "
                    f"({', '.join(missing[:5])}); cannot order the slices",
                )
            warnings.warn(
                f"{members[0][0].parent}: series {uid} has no ImagePositionPatient; slices ordered by "
                "InstanceNumber and the slice spacing is unknown (set to 1)",
                stacklevel=3,
            )
        ordered = sorted(members, key=lambda m: int(m[1].get("InstanceNumber", 0)))
        positions = ()
    return SeriesInfo(
        uid=uid,
        files=tuple(str(p) for p, _ in ordered),
        modality=str(first.get("Modality", "")),
        description=str(first.get("SeriesDescription", "")),
        rows=int(first.Rows),
        columns=int(first.Columns),
        number_of_frames=int(first.get("NumberOfFrames", 1) or 1),
        positions=positions,
        sizes=tuple((int(ds.Rows), int(ds.Columns)) for _, ds in ordered),
        orientations=tuple(
            tuple(float(v) for v in ds.ImageOrientationPatient) if "ImageOrientationPatient" in ds else None
            for _, ds in ordered
        ),
    )


def select_series(series: list[SeriesInfo], folder: str | PathLike, series_uid: str | None = None) -> SeriesInfo:
    """Choose one series: the one named ``series_uid``, or the only one.

    Args:
        series: the output of :func:`find_dicom_series`.
        folder: the folder they came from (for messages).
        series_uid: SeriesInstanceUID to choose; ``None`` accepts a folder with exactly one series.

    Raises:
        ImageLoadError: ``series_uid`` is not among them, or several series and no ``series_uid``;
            the message lists every series found.
    """
    listing = "; ".join(s.summary() for s in series)
    if series_uid is not None:
        for s in series:
            if s.uid == series_uid:
                return s
        raise ImageLoadError(folder, f"series_uid={series_uid!r} not found; series found: {listing}")
    if len(series) > 1:
        raise ImageLoadError(
            folder, f"holds {len(series)} DICOM series; choose one with series_uid (--series-uid): {listing}"
        )
    return series[0]


def validate_series(series: SeriesInfo, folder: str | PathLike | None = None, tolerance: float = 0.1) -> None:
    """Check that a multi-file series forms a regular volume.

    Args:
        series: a series from :func:`find_dicom_series`.
        folder: the folder it came from (for messages); default the first file's folder.
        tolerance: largest accepted deviation of a slice gap from the median gap, as a fraction
            of the median gap (default 0.1; one missing slice makes a deviation of 1.0).

    Raises:
        ImageLoadError: mixed sizes, mixed orientations, several multi-frame files, duplicate
            positions or an irregular spacing (e.g. a missing slice); the message names the files.
    """
    where = Path(folder) if folder is not None else Path(series.files[0]).parent
    if len(series.files) < 2:
        return
    names = [Path(f).name for f in series.files]
    if series.number_of_frames > 1:
        raise ImageLoadError(where, f"series {series.uid} has {len(names)} multi-frame files; load one file at a time")
    _check_one_size(series, names, where)
    _check_one_orientation(series, names, where)
    if series.positions:
        _check_spacing(series, names, where, tolerance)


def _check_one_size(series: SeriesInfo, names: list[str], where: Path) -> None:
    size_counts: dict[tuple[int, int], int] = {}
    for size in series.sizes:
        size_counts[size] = size_counts.get(size, 0) + 1
    if len(size_counts) > 1:
        common = max(size_counts, key=lambda k: size_counts[k])
        odd = [f"{n} ({r}x{c})" for n, (r, c) in zip(names, series.sizes, strict=True) if (r, c) != common]
        raise ImageLoadError(
            where,
            f"series {series.uid} mixes image sizes: most files are {common[0]}x{common[1]} (rows x columns) "
            f"but {', '.join(odd[:5])}{' ...' if len(odd) > 5 else ''} differ; expected one size per series",
        )


def _check_one_orientation(series: SeriesInfo, names: list[str], where: Path) -> None:
    if any(o is not None for o in series.orientations):
        ref = next(o for o in series.orientations if o is not None)
        odd = [
            n
            for n, o in zip(names, series.orientations, strict=True)
            if o is None or not np.allclose(o, ref, atol=1e-3)
        ]
        if odd:
            raise ImageLoadError(
                where, f"series {series.uid} mixes slice orientations ({', '.join(odd[:5])} differ from {names[0]})"
            )


def _check_spacing(series: SeriesInfo, names: list[str], where: Path, tolerance: float) -> None:
    gaps = np.diff(np.asarray(series.positions))
    spacing = float(np.median(gaps))
    duplicate = np.flatnonzero(np.abs(gaps) < 1e-3)
    if duplicate.size:
        i = int(duplicate[0])
        raise ImageLoadError(
            where,
            f"series {series.uid}: {names[i]} and {names[i + 1]} share the slice position "
            f"{series.positions[i]:.3f} mm; expected one slice per position",
        )
    bad = np.flatnonzero(np.abs(gaps - spacing) > tolerance * abs(spacing))
    if bad.size:
        i = int(bad[0])
        missing = round(gaps[i] / spacing) - 1
        hint = f", about {missing} missing slice(s)" if missing >= 1 else ""
        raise ImageLoadError(
            where,
            f"series {series.uid} has irregular slice spacing: gap of {gaps[i]:.3f} mm between {names[i]} and "
            f"{names[i + 1]} where the series' spacing is {spacing:.3f} mm{hint}; "
            "expected evenly spaced slices (re-export the complete series)",
        )
