"""The inputs of ``score``: what each is called in the outputs and in every message, and what its header says.

A folder or file name can be a patient's name (PACS exports often are), and a message about an
input that failed may name its files before any DICOM header has been read. So, by default,
nothing derived from a path reaches an output or a message, whatever happens to the input:

- case names are ``case_001``, ``case_002``, ... in input order (the report's ``input_index``
  column is the position on the command line: the mapping stays with whoever ran the command);
- every text about an input (failure, refusal, warning, log line) goes through
  :meth:`ScoreInput.redact`: the input's path, as given or absolute, becomes its case name; the
  names of the file or folder and of everything inside it (``len >= 3``) become ``[file]``; the
  DICOM PatientName (and its parts), PatientID, PatientBirthDate and OtherPatientIDs read from
  its header become ``[redacted]``.

With ``include_identifiers=True`` (``--include-identifiers``) case names come from the file or
folder names (letters, digits, ``-_.``; unique case-insensitively), texts are left as they are,
and the report adds the ``input`` path and the DICOM ``patient_id``.

Example:
    >>> items = inspect_inputs(["/data/DOE_JOHN", "chest.nii.gz"], series_uid=None)  # doctest: +SKIP
    >>> [i.name for i in items], items[0].redact("/data/DOE_JOHN: holds 2 DICOM series")  # doctest: +SKIP
    (['case_001', 'case_002'], 'case_001: holds 2 DICOM series')
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

from mama_monai.data.dicom_series import find_dicom_series, is_dicom_file, select_series

__all__ = ["REDACTED", "FILE_PLACEHOLDER", "ScoreInput", "inspect_inputs"]

REDACTED = "[redacted]"
FILE_PLACEHOLDER = "[file]"
_IDENTIFIER_TAGS = ("Modality", "PatientName", "PatientID", "PatientBirthDate", "OtherPatientIDs")
_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff")
_RESERVED = ("scores.csv", "scores.json")
_MIN_NAME = 3  # shorter names ("1", "ct") are not searched for in texts: they would mangle words and numbers


@dataclass
class ScoreInput:
    """One input of ``score``: its path, position, case name and what its DICOM header says.

    Attributes:
        path: the input as given.
        index: its 1-based position among the inputs.
        name: its case name (module docstring).
        modality: DICOM Modality, upper case; ``""`` for NIfTI / PNG or an unreadable header.
        patient_id: DICOM PatientID (reported only with ``include_identifiers``).
        identifiers: header strings that :meth:`redact` removes.
        keep_identifiers: ``include_identifiers`` was asked for: :meth:`redact` leaves texts as they are.
    """

    path: str
    index: int
    name: str = ""
    modality: str = ""
    patient_id: str = ""
    identifiers: list[str] = field(default_factory=list)
    keep_identifiers: bool = False
    _pattern: re.Pattern | None = field(default=None, repr=False)

    def redact(self, text: str) -> str:
        """``text`` without this input's path, file names or patient data (module docstring)."""
        if self.keep_identifiers:
            return text
        for form in self._path_forms():
            text = re.sub(rf"(?<![\w.\-]){re.escape(form)}(?![\w\-])", lambda _: self.name, text)
        if self._pattern is None:
            self._pattern = _names_pattern(self._entry_names())
        if self._pattern.pattern:
            text = self._pattern.sub(FILE_PLACEHOLDER, text)
        for ident in self.identifiers:
            text = re.sub(re.escape(ident), REDACTED, text, flags=re.IGNORECASE)
        return text

    def _path_forms(self) -> list[str]:
        given = self.path.rstrip("/\\") or self.path
        forms = {self.path, given, str(Path(given)), os.path.abspath(given), os.path.realpath(given)}
        return sorted((f for f in forms if len(f) >= _MIN_NAME and f.strip("./")), key=len, reverse=True)

    def _entry_names(self) -> set[str]:
        """The input's own name (with and without its suffix) and every name below it (no link followed)."""
        own = Path(self.path.rstrip("/\\")).name
        names = {own, _strip_suffix(own), Path(os.path.realpath(self.path)).name}
        if os.path.isdir(self.path):
            for _, dirs, files in os.walk(self.path):
                names.update(dirs)
                names.update(files)
                names.update(_strip_suffix(f) for f in files)
        return {n for n in names if len(n) >= _MIN_NAME and n != self.name}


def _names_pattern(names: set[str]) -> re.Pattern:
    """One regex matching any of ``names`` as a whole token (not inside a longer name or number)."""
    if not names:
        return re.compile("")
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![\w.\-])(?:{alternatives})(?![\w\-])")


def _strip_suffix(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _header(path: Path, series_uid: str | None) -> pydicom.Dataset | None:
    """The DICOM header of a file or of the first file of the chosen series; ``None`` otherwise."""
    try:
        if path.is_dir():
            first = select_series(find_dicom_series(path), path, series_uid).files[0]
        elif path.is_file() and is_dicom_file(path):
            first = path
        else:
            return None
        return pydicom.dcmread(first, stop_before_pixels=True, force=True, specific_tags=list(_IDENTIFIER_TAGS))
    except Exception:  # unreadable: the loader reports it when the case is scored
        return None


def _inspect(path: str, index: int, series_uid: str | None, keep: bool) -> ScoreInput:
    ds = _header(Path(path), series_uid)
    if ds is None:
        return ScoreInput(path, index, keep_identifiers=keep)
    values = [str(ds.get(tag, "") or "") for tag in _IDENTIFIER_TAGS[1:]]
    parts = set(values) | set(re.split(r"[\^\s=,\\]+", values[0]))
    identifiers = sorted((p.strip() for p in parts if len(p.strip()) >= _MIN_NAME), key=len, reverse=True)
    modality = str(ds.get("Modality", "") or "").upper()
    return ScoreInput(path, index, "", modality, str(ds.get("PatientID", "") or ""), identifiers, keep)


def _file_names(items: Sequence[ScoreInput]) -> list[str]:
    """``include_identifiers`` names: the file / folder names, sanitised, unique case-insensitively."""
    taken = set(_RESERVED)
    names = []
    for item in items:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", _strip_suffix(Path(item.path.rstrip("/\\")).name)).strip("._-")
        base = base or f"case_{item.index:03d}"
        name, n = base, 2
        while name.lower() in taken:
            name, n = f"{base}_{n}", n + 1
        taken.add(name.lower())
        names.append(name)
    return names


def inspect_inputs(
    paths: Sequence[str | os.PathLike], series_uid: str | None, include_identifiers: bool = False
) -> list[ScoreInput]:
    """Read each input's DICOM header (if any) and give it its case name (module docstring).

    Args:
        paths: the inputs, in command-line order.
        series_uid: the SeriesInstanceUID chosen for folders of several series, or ``None``.
        include_identifiers: names from the file names and no redaction (default ``False``).

    Returns:
        One :class:`ScoreInput` per path, in order; never raises for an unreadable input.
    """
    items = [_inspect(str(p), i, series_uid, include_identifiers) for i, p in enumerate(paths, start=1)]
    names = _file_names(items) if include_identifiers else [f"case_{item.index:03d}" for item in items]
    for item, name in zip(items, names):
        item.name = name
    return items
