"""Manifest builder for RIDER Neuro MRI (TCIA, doi:10.7937/K9/TCIA.2015.VOSN3HN1).

Expected layout (as the NBIA Data Retriever writes it)::

    download_dir/                                   # the "RIDER Neuro MRI" folder
      RIDER Neuro MRI-<id>/<study folder>/<series folder>/*.dcm
    labels.csv                                      # from the user, see below

The download carries no slice-level labels: the paper's 349 slices (109 normal, 240 abnormal;
DESIGN.md §4) were labelled by its authors. The user supplies them as a CSV with a header row:

    ===========  ========  ====================================================================
    column       required  meaning
    ===========  ========  ====================================================================
    file         yes       the slice's DICOM file, relative to ``download_dir``
    label        yes       0 normal, 1 abnormal
    patient_id   no        default: the ``RIDER Neuro MRI-<id>`` folder in ``file``'s path
    mask         no        a lesion mask file, relative to ``download_dir``
    ===========  ========  ====================================================================

Example ``labels.csv``::

    file,label
    RIDER Neuro MRI-1023805636/01-01-1900-NA-BRAINRESEARCH-32159/5.000000-T1 post-15234/1-12.dcm,1

Protocol: stratified k-fold by patient (``StratifiedGroupKFold``), so that no patient is in both
the train and test set of a fold.
"""

from __future__ import annotations

import csv
from pathlib import Path

from mama_monai.data.builders._common import list_files, raise_missing, require_dir, warn_extras
from mama_monai.data.folds import assign_folds
from mama_monai.data.manifest import Manifest, ManifestCase

__all__ = ["build_rider", "PATIENT_PREFIX"]

PATIENT_PREFIX = "RIDER Neuro MRI-"


def _patient_of(rel: str) -> str | None:
    return next((part for part in Path(rel).parts if part.startswith(PATIENT_PREFIX)), None)


def build_rider(download_dir: str | Path, labels_csv: str | Path, folds: int = 5, seed: int = 0) -> Manifest:
    """Scan a RIDER Neuro MRI download with the user's slice labels and return the manifest.

    Args:
        download_dir: the folder holding the ``RIDER Neuro MRI-<id>`` patient folders.
        labels_csv: the slice-label CSV described in the module docstring.
        folds: number of folds k (grouped by patient). Default 5.
        seed: seed of the fold assignment. Default 0.

    Raises:
        FileNotFoundError: a folder, the CSV, or files it names are missing (all listed by name).
        ValueError: a bad CSV header, label, duplicate file, or a row without a patient id.

    Example:
        >>> m = build_rider("/data/RIDER Neuro MRI", "/data/rider_labels.csv")  # doctest: +SKIP
    """
    root = require_dir(Path(download_dir), "RIDER Neuro MRI download")
    labels_csv = Path(labels_csv)
    if not labels_csv.is_file():
        raise FileNotFoundError(f"labels_csv {labels_csv} does not exist; RIDER slice labels are not in the download (see the builder's docstring).")
    with labels_csv.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        lacking = [c for c in ("file", "label") if c not in (reader.fieldnames or [])]
        if lacking:
            raise ValueError(f"{labels_csv} lacks columns {lacking}; found {reader.fieldnames}, expected file,label[,patient_id][,mask].")
        rows = list(reader)
    if not rows:
        raise ValueError(f"{labels_csv} has no rows.")
    cases: list[ManifestCase] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        rel = Path(row["file"].strip()).as_posix()
        if row["label"].strip() not in ("0", "1"):
            raise ValueError(f"{labels_csv} line {line} ({rel}): label must be 0 or 1, got {row['label']!r}.")
        if rel in seen:
            raise ValueError(f"{labels_csv} line {line}: file {rel} is listed twice.")
        seen.add(rel)
        patient = (row.get("patient_id") or "").strip() or _patient_of(rel)
        if patient is None:
            raise ValueError(f"{labels_csv} line {line} ({rel}): no patient_id column value and no '{PATIENT_PREFIX}<id>' folder in the path.")
        mask = (row.get("mask") or "").strip() or None
        case_id = rel[: -len(".dcm")] if rel.lower().endswith(".dcm") else rel
        cases.append(ManifestCase(case_id=case_id, image=rel, label=int(row["label"]), mask=mask, group=patient))
    expected = [c.image for c in cases] + [c.mask for c in cases if c.mask]
    raise_missing([p for p in expected if not (root / p).is_file()], f"{root} (named in {labels_csv.name})")
    on_disk = {p.relative_to(root).as_posix() for d in root.iterdir() if d.is_dir() and d.name.startswith(PATIENT_PREFIX) for p in list_files(d, (".dcm",), recursive=True)}
    warn_extras(on_disk - set(expected), f"{root} (DICOM files without a label)")
    fold_ids = assign_folds([c.label for c in cases], folds, seed, groups=[c.group for c in cases])
    for case, fold in zip(cases, fold_ids):
        case.fold = fold
    n_abn = sum(c.label for c in cases)
    description = (
        f"RIDER Neuro MRI: {len(cases)} labelled slices ({len(cases) - n_abn} normal, {n_abn} abnormal) from "
        f"{len({c.group for c in cases})} patients, {folds} folds grouped by patient (seed {seed}) "
        f"(paper: 349 slices, 109 normal, 240 abnormal, 19 patients)."
    )
    return Manifest("rider_neuro_mri", root.resolve(), cases, folds, description)
