"""Manifest builder for the COVID-19 chest X-ray protocol (Cohen et al., ieee8023/covid-chestxray-dataset).

Expected layout::

    download_dir/                 # the covid-chestxray-dataset repository
      metadata.csv                # columns used: patientid, finding, modality, view, folder, filename
      images/<filename>           # the radiographs
    normals_dir/                  # normal radiographs from another public set, any depth, e.g.
      *.png|*.jpg|*.jpeg|*.dcm    # Kaggle "Chest X-Ray Images (Pneumonia)" chest_xray/*/NORMAL/

COVID-19 cases are the ``metadata.csv`` rows whose ``modality`` is ``X-ray`` and whose
``finding`` contains ``COVID-19`` (e.g. ``Pneumonia/Viral/COVID-19``); optionally restricted to
some ``view`` values. Cohen's set holds no normal radiographs: the paper took its 1583 normals
from elsewhere, so the user names the folder. Paper protocol (DESIGN.md §4): the normals are
split into k folds, and all COVID images are in the test set of every fold (``split: "test"``).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

from mama_monai.data.builders._common import list_files, raise_missing, require_dir, warn_extras
from mama_monai.data.folds import assign_folds
from mama_monai.data.manifest import Manifest, ManifestCase

__all__ = ["build_covid_xray"]

_REQUIRED_COLUMNS = ("patientid", "finding", "modality", "folder", "filename")


def build_covid_xray(
    download_dir: str | Path,
    normals_dir: str | Path | Sequence[str | Path],
    folds: int = 5,
    seed: int = 0,
    views: Sequence[str] | None = None,
) -> Manifest:
    """Scan Cohen's COVID X-ray download plus a folder of normals and return the manifest.

    Args:
        download_dir: the covid-chestxray-dataset folder (``metadata.csv`` and ``images/``).
        normals_dir: one or more folders of normal radiographs (searched recursively).
        folds: number of folds k for the normals. Default 5.
        seed: seed of the fold assignment. Default 0.
        views: keep only COVID rows whose ``view`` is one of these (e.g. ``("PA", "AP")``);
            None keeps every X-ray view. Default None.

    Raises:
        FileNotFoundError: missing ``metadata.csv``, folders, or images named in it (listed by
            name). ValueError: ``metadata.csv`` lacks a needed column, or no COVID/normal images.

    Example:
        >>> m = build_covid_xray("/data/covid-chestxray-dataset", "/data/chest_xray/train/NORMAL")  # doctest: +SKIP
    """
    download_dir = Path(download_dir)
    normal_dirs = [Path(normals_dir)] if isinstance(normals_dir, (str, os.PathLike)) else [Path(p) for p in normals_dir]
    meta_path = download_dir / "metadata.csv"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} does not exist; expected the covid-chestxray-dataset repository folder.")
    image_dir = require_dir(download_dir / "images", "covid-chestxray-dataset images")
    covid_rows = _covid_rows(meta_path, image_dir, views)
    normal_files = _normal_files(normal_dirs)
    root = Path(os.path.commonpath([download_dir.resolve()] + [p.resolve() for p in normal_dirs]))
    cases: list[ManifestCase] = []
    normal_folds = assign_folds([0] * len(normal_files), folds, seed)
    for path, fold in zip(normal_files, normal_folds):
        rel = path.resolve().relative_to(root).as_posix()
        cases.append(ManifestCase(case_id=f"normal/{rel}", image=rel, label=0, fold=fold))
    seen = set()
    for r in covid_rows:
        if r["filename"] in seen:
            continue
        seen.add(r["filename"])
        rel = (image_dir / r["filename"]).resolve().relative_to(root).as_posix()
        cases.append(ManifestCase(case_id=f"covid/{r['filename']}", image=rel, label=1, split="test", group=r["patientid"].strip() or None))
    n_covid = len(cases) - len(normal_files)
    description = (
        f"COVID-19 chest X-ray (Cohen et al.) + {len(normal_files)} normals in {folds} folds (seed {seed}); "
        f"{n_covid} COVID images in every test fold (paper: 1583 normal, 225 COVID)."
    )
    return Manifest("covid_xray", root, cases, folds, description)


def _covid_rows(meta_path: Path, image_dir: Path, views: Sequence[str] | None) -> list[dict[str, str]]:
    """The ``metadata.csv`` rows of COVID-19 X-rays in ``images/`` (of ``views``, when given);
    files named but missing, or a file with no row, are reported."""
    with meta_path.open(newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.DictReader(f)
        lacking = [c for c in _REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if lacking:
            raise ValueError(f"{meta_path} lacks columns {lacking}; found {reader.fieldnames}.")
        rows = list(reader)
    listed = {r["filename"] for r in rows if r["folder"].strip() == "images"}
    present = {p.name for p in list_files(image_dir, (".png", ".jpg", ".jpeg"))}
    covid_rows = [
        r for r in rows
        if r["modality"].strip() == "X-ray" and r["folder"].strip() == "images" and "COVID-19" in r["finding"] and (views is None or r.get("view", "").strip() in views)
    ]
    raise_missing([r["filename"] for r in covid_rows if r["filename"] not in present], f"{image_dir} (named in metadata.csv)")
    warn_extras(present - listed, str(image_dir))
    if not covid_rows:
        raise ValueError(f"{meta_path}: no X-ray rows with 'COVID-19' in finding (views={views!r}).")
    return covid_rows


def _normal_files(normal_dirs: Sequence[Path]) -> list[Path]:
    """The image files under each normals folder (each must hold some)."""
    normal_files: list[Path] = []
    for d in normal_dirs:
        found = list_files(require_dir(d, "normal radiographs"), recursive=True)
        if not found:
            raise ValueError(f"normals_dir {d} holds no image files (expected {'/'.join(('png', 'jpg', 'jpeg', 'dcm'))}).")
        normal_files += found
    return normal_files
