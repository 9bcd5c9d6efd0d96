"""Helpers shared by the data-set builders: scanning folders and reporting missing/extra files."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

__all__ = ["IMAGE_EXTENSIONS", "ExtraFilesWarning", "list_files", "require_dir", "raise_missing", "warn_extras"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm")


class ExtraFilesWarning(UserWarning):
    """Files were found in a download folder that the data set's protocol does not use."""


def _shown(names: list[str], limit: int = 20) -> str:
    return ", ".join(names[:limit]) + (f" ... and {len(names) - limit} more" if len(names) > limit else "")


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` if it is a folder, else raise naming ``what`` and the path."""
    if not path.is_dir():
        raise FileNotFoundError(f"{what} folder {path} does not exist; check download_dir and the data set's layout.")
    return path


def list_files(folder: Path, extensions: Iterable[str] = IMAGE_EXTENSIONS, recursive: bool = False) -> list[Path]:
    """Sorted files in ``folder`` whose suffix (case-insensitive) is in ``extensions``; hidden files skipped."""
    exts = {e.lower() for e in extensions}
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in exts)


def raise_missing(missing: Iterable[str], where: str) -> None:
    """Raise one ``FileNotFoundError`` listing every missing expected file by name (no-op when none)."""
    missing = sorted(set(missing))
    if missing:
        raise FileNotFoundError(f"{len(missing)} expected file(s) missing in {where}: {_shown(missing)}")


def warn_extras(extras: Iterable[str], where: str) -> list[str]:
    """Warn (``ExtraFilesWarning``) naming files present in ``where`` but not used; returns them sorted."""
    extras = sorted(set(extras))
    if extras:
        warnings.warn(f"{len(extras)} file(s) in {where} are not used by the protocol: {_shown(extras)}", ExtraFilesWarning, stacklevel=3)
    return extras
