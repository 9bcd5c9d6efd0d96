"""Accessors for the embedded demo data (``mama_monai/demo_data/``, installed with the package).

Two demo sets, described in ``demo_data/PROVENANCE.md``:

- ``"lidc"``: LIDC-IDRI-0001 chest CT (real, HU int16, 2.1 x 2.1 x 2.5 mm) with the union of four
  radiologists' nodule outlines and the fair slice split of DESIGN.md §7.
- ``"brain"``: MNI ICBM152 2009a T1 (real template, 2 mm) and a copy with SIMULATED lesions on
  held-out slices.

Example:
    >>> from mama_monai.data.demo import load_demo_ct, demo_slice_table, demo_manifest
    >>> paths = load_demo_ct()                      # {"image": ..., "mask": ..., "agreement": ...}
    >>> rows = demo_slice_table("lidc")            # list of dicts, one per slice
    >>> cases = demo_manifest("lidc").to_dicts()   # MONAI data dicts with slice_index
"""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path
from typing import Any

from mama_monai.data.manifest import Manifest, load_manifest

__all__ = ["DEMO_SETS", "demo_data_dir", "load_demo_ct", "load_demo_brain", "demo_slice_table", "demo_manifest"]

DEMO_SETS = {"lidc": "lidc_idri_0001", "brain": "mni152_t1"}
_INT_COLUMNS = {"slice_index", "n_readers", "large_nodule", "nodule_voxels", "simulated_lesion", "n_lesions"}
_FLOAT_COLUMNS = {"z_mm", "distance_mm", "head_fraction"}


def demo_data_dir() -> Path:
    """The installed ``demo_data`` folder (a real path; the package must be installed unzipped)."""
    path = Path(str(resources.files("mama_monai") / "demo_data"))
    if not (path / "PROVENANCE.md").is_file():
        raise FileNotFoundError(f"demo data folder {path} is missing or incomplete; reinstall mama-monai or run pipelines/build_demo_data.py.")
    return path


def _set_dir(name: str) -> Path:
    if name not in DEMO_SETS:
        raise ValueError(f"demo set name must be one of {sorted(DEMO_SETS)}, got {name!r}.")
    return demo_data_dir() / DEMO_SETS[name]


def load_demo_ct() -> dict[str, Path]:
    """Paths of the LIDC-IDRI-0001 demo: ``image`` (HU), ``mask`` (nodule union), ``agreement``
    (readers per voxel, 0-4), ``slices`` (CSV) and ``manifest`` (JSON)."""
    d = _set_dir("lidc")
    return {"image": d / "ct.nii.gz", "mask": d / "nodule_mask.nii.gz", "agreement": d / "nodule_agreement.nii.gz",
            "slices": d / "slices.csv", "manifest": d / "manifest.json"}


def load_demo_brain() -> dict[str, Path]:
    """Paths of the brain demo: ``image`` (real T1), ``simulated_image`` and ``simulated_mask``
    (SIMULATED lesions on the test slices), ``slices`` (CSV) and ``manifest`` (JSON)."""
    d = _set_dir("brain")
    return {"image": d / "t1.nii.gz", "simulated_image": d / "t1_simulated_lesions.nii.gz",
            "simulated_mask": d / "simulated_lesion_mask.nii.gz", "slices": d / "slices.csv", "manifest": d / "manifest.json"}


def demo_slice_table(name: str = "lidc") -> list[dict[str, Any]]:
    """The per-slice table of a demo set (``"lidc"`` or ``"brain"``), numbers converted.

    LIDC columns: slice_index, z_mm, n_readers, large_nodule, nodule_voxels, distance_mm, split
    (anomalous / test_normal / train / excluded). Brain columns: slice_index, z_mm,
    head_fraction, split (train / test / excluded), simulated_lesion, n_lesions, lesion_contrasts.
    """
    with open(_set_dir(name) / "slices.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key in row:
            if key in _INT_COLUMNS:
                row[key] = int(row[key])
            elif key in _FLOAT_COLUMNS:
                row[key] = float(row[key])
    return rows


def demo_manifest(name: str = "lidc") -> Manifest:
    """The validated manifest of a demo set (``"lidc"`` or ``"brain"``)."""
    return load_manifest(_set_dir(name) / "manifest.json")
