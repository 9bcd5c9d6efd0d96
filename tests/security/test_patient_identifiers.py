"""No patient identifier in any output or message of ``score``, on every path, unless asked for.

The patient here is Jane Doe, born 1945-01-01: the name of the folder and files she is exported
in (a hand-made folder, as shared exports often are) while her DICOM headers were anonymised, so
no header-based redaction can catch it; and, in the last tests, the content of her real headers.
Each test runs the real command line (``main``) on real DICOM series written with pydicom and
checks every byte written under the output folder, stdout, stderr and the log records.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from mama_monai.cli import main
from mama_monai.data import load_demo_ct
from tests.data.conftest import write_series
from tests.model_files import tiny_model_file

FOLDER = "Doe_Jane_19450101"  # the folder holding the patient's study
ANONYMISED = {"PatientName": "Anonymous", "PatientID": "ANON-0007"}
HEADERS = {"PatientName": "Doe^Jane", "PatientID": "PAT-19450101", "PatientBirthDate": "19450101"}
#: strings that must appear nowhere unless --include-identifiers
IDENTIFYING = ("doe", "jane", "19450101", "pat-19450101")


def _volume(slices: int) -> np.ndarray:
    rows, cols = np.meshgrid(np.arange(20), np.arange(24), indexing="ij")
    return np.stack([(rows * 30 + cols * 5 + 100 * k).astype(np.int16) for k in range(slices)])


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_model_file(tmp_path_factory.mktemp("model") / "model.pt", 0.05)


def _score(model: Path, inputs: list[Path], out: Path, capsys, caplog, *extra: str) -> tuple[int, str]:
    """Run ``mama-monai score``; return the exit code and everything it said (stdout, stderr, log)."""
    caplog.set_level(logging.INFO)
    code = main(["score", "--model", str(model), "--input", *map(str, inputs), "--output", str(out), *extra])
    said = capsys.readouterr()
    return code, "\n".join([said.out, said.err, caplog.text])


def _written(folder: Path) -> str:
    """Every file name and every byte under ``folder`` (gzip decompressed) as text."""
    parts = []
    for path in sorted(folder.rglob("*")):
        parts.append(str(path.relative_to(folder)))
        if path.is_file():
            data = path.read_bytes()
            parts.append((gzip.decompress(data) if path.name.endswith(".gz") else data).decode("latin-1"))
    return "\n".join(parts)


def _assert_anonymous(*texts: str) -> None:
    for text in texts:
        for ident in IDENTIFYING:
            assert ident not in text.lower(), f"{ident!r} leaked: ...{text[max(0, text.lower().find(ident) - 80):][:200]}..."


def test_folder_of_two_series_scored_without_choosing_one_leaks_nothing(model, tmp_path, capsys, caplog):
    # the case: the failure path reads no header, so header-based redaction cannot help
    patient = tmp_path / FOLDER
    write_series(patient / "series_a", _volume(3), seed=1, **ANONYMISED)
    write_series(patient / "series_b", _volume(3), seed=2, **ANONYMISED)
    out = tmp_path / "out"
    code, said = _score(model, [patient], out, capsys, caplog)
    _assert_anonymous(_written(out), said)
    assert code == 1
    report = json.loads((out / "scores.json").read_text())
    assert report["failures"][0]["case"] == "case_001" and report["failures"][0]["input_index"] == 1
    assert "case_001: holds 2 DICOM series" in report["failures"][0]["error"]  # still says what is wrong


def test_scored_case_is_named_by_position_not_by_its_folder(model, tmp_path, capsys, caplog):
    patient = tmp_path / FOLDER / "ct"
    write_series(patient, _volume(3), seed=3, **ANONYMISED)
    out = tmp_path / "out"
    code, said = _score(model, [patient], out, capsys, caplog)
    _assert_anonymous(_written(out), said)
    assert code == 0
    with open(out / "scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["case"], r["input_index"], r["status"]) for r in rows] == [("case_001", "1", "ok")]
    assert sorted(p.name for p in out.iterdir()) == ["case_001", "index.html", "scores.csv", "scores.json"]


def test_refusal_names_no_patient(model, tmp_path, capsys, caplog):
    patient = tmp_path / FOLDER
    write_series(patient, _volume(3), seed=4, Modality="MR", **ANONYMISED)
    code, said = _score(model, [patient], tmp_path / "out", capsys, caplog)
    _assert_anonymous(said)
    assert code == 2 and "case_001 (input 1) is MR" in said and "--force" in said


def test_file_names_inside_the_folder_are_not_repeated_in_errors(model, tmp_path, capsys, caplog):
    # a series with a missing slice: the error names the two files around the gap
    patient = tmp_path / FOLDER
    files = write_series(patient, _volume(5), skip=(2,), shuffle=False, seed=5, **ANONYMISED)
    for k, path in enumerate(files):
        path.rename(path.with_name(f"Doe_Jane_{k:03d}.dcm"))
    out = tmp_path / "out"
    code, said = _score(model, [patient], out, capsys, caplog)
    _assert_anonymous(_written(out), said)
    assert code == 1
    error = json.loads((out / "scores.json").read_text())["failures"][0]["error"]
    assert "irregular slice spacing" in error and "between [file] and [file]" in error


def test_loader_warnings_are_reported_redacted(model, tmp_path, capsys, caplog):
    # slice gaps that vary within the tolerance: read, with one warning naming the folder
    patient = tmp_path / FOLDER
    files = write_series(patient, _volume(5), shuffle=False, seed=6, **ANONYMISED)
    ds = pydicom.dcmread(files[2])
    position = [float(v) for v in ds.ImagePositionPatient]
    ds.ImagePositionPatient = [f"{v:.6f}" for v in (position[0], position[1], position[2] + 0.1)]
    ds.save_as(files[2])
    out = tmp_path / "out"
    code, said = _score(model, [patient], out, capsys, caplog)
    _assert_anonymous(_written(out), said)
    assert code == 0
    notes = json.loads((out / "scores.json").read_text())["cases"][0]["warnings"]
    assert any(n.startswith("case_001: series") and "varying by up to 0.100 mm" in n for n in notes), notes


def test_nifti_named_after_the_patient(model, tmp_path, capsys, caplog):
    # NIfTI carries no patient header at all: only the file name can identify
    crop = tmp_path / "Doe_Jane_19450101.nii.gz"
    nib.save(nib.load(load_demo_ct()["image"]).slicer[:, :, 60:62], crop)
    out = tmp_path / "out"
    code, said = _score(model, [crop], out, capsys, caplog)
    _assert_anonymous(_written(out), said)
    assert code == 0 and (out / "case_001" / "anomaly_map.nii.gz").is_file()


def test_header_identifiers_stay_out_even_when_the_folder_is_anonymous(model, tmp_path, capsys, caplog):
    series = tmp_path / "study_17"
    write_series(series, _volume(3), seed=8, **HEADERS)
    out = tmp_path / "out"
    code, said = _score(model, [series, tmp_path / "missing_input"], out, capsys, caplog, "--no-dicom-output")
    _assert_anonymous(_written(out), said)
    assert code == 1
    assert not (out / "case_001" / "dicom").exists()


def test_only_the_dicom_objects_carry_the_patient_they_are_filed_under(model, tmp_path, capsys, caplog):
    # DICOM outputs (on by default for DICOM inputs) keep the source's Patient module: they go back
    # into that patient's study. Every other file and message stays anonymous.
    series = tmp_path / "study_17"
    write_series(series, _volume(3), seed=8, **HEADERS)
    out = tmp_path / "out"
    code, said = _score(model, [series], out, capsys, caplog)
    assert code == 0
    dicom = sorted((out / "case_001" / "dicom").iterdir())
    assert [p.name for p in dicom] == ["parametric_map.dcm", "seg.dcm", "sr.dcm"]
    for path in dicom:
        ds = pydicom.dcmread(path)
        assert (str(ds.PatientName), ds.PatientID, ds.PatientBirthDate) == tuple(HEADERS.values())
        path.unlink()
    _assert_anonymous(_written(out), said)


def test_identifiers_and_the_mapping_only_when_asked(model, tmp_path, capsys, caplog):
    patient = tmp_path / FOLDER
    write_series(patient, _volume(3), seed=7, **HEADERS)
    out = tmp_path / "out"
    code, _ = _score(model, [patient], out, capsys, caplog, "--include-identifiers")
    assert code == 0
    case = json.loads((out / "scores.json").read_text())["cases"][0]
    assert case["case"] == FOLDER and case["input"] == str(patient) and case["patient_id"] == HEADERS["PatientID"]
