"""score_cases() and ``mama-monai score``: a DICOM series and a crop of the real demo CT, end to end.

The model is an untrained tiny ConvAutoEncoder saved as a real model file: enough to check the
outputs, their geometry, the report and the refusals (scores themselves are meaningless here).
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from mama_monai.cli import main
from mama_monai.data import load_demo_ct, load_image
from mama_monai.engines.checkpoint import CheckpointError
from mama_monai.workflows.scoring import (
    REPORT_COLUMNS,
    ModalityMismatchError,
    OutputExistsError,
    score_cases,
)
from tests.data.conftest import write_series
from tests.model_files import tiny_model_file

PATIENT_NAME, PATIENT_ID = "Synthetic^Patient", "SYNTH-0001"  # what write_series puts in every header


def _model(path: Path, threshold: float, modality: str | None = "CT") -> Path:
    return tiny_model_file(path, {"value": threshold, "method": "quantile", "quantile": 0.95}, modality)


def _volume(slices: int = 4) -> np.ndarray:
    rows, cols = np.meshgrid(np.arange(20), np.arange(24), indexing="ij")
    return np.stack([(rows * 30 + cols * 5 + 100 * k).astype(np.int16) for k in range(slices)])


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inputs")
    c, s = np.cos(0.3), np.sin(0.3)
    write_series(root / "chest_series", _volume(), orientation=(c, s, 0.0, -s, c, 0.0), seed=4)
    write_series(root / "brain_mr", _volume(3), Modality="MR", seed=5)
    demo = nib.load(load_demo_ct()["image"])
    nib.save(demo.slicer[:, :, 60:63], root / "lidc_crop.nii.gz")  # real CT, 3 slices, shifted affine
    sitk.WriteImage(sitk.GetImageFromArray(np.tile(np.arange(40, dtype=np.uint8) * 5, (30, 1))), str(root / "xray.png"))
    (root / "broken.nii.gz").write_bytes(b"not a nifti file")
    return {
        "series": root / "chest_series",
        "mr": root / "brain_mr",
        "nifti": root / "lidc_crop.nii.gz",
        "png": root / "xray.png",
        "broken": root / "broken.nii.gz",
        "model": _model(root / "model.pt", threshold=0.05),
        "root": root,
    }


@pytest.fixture(scope="module")
def run(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "scores"
    paths = [inputs["series"], inputs["broken"], inputs["nifti"], inputs["png"]]
    report = score_cases(inputs["model"], paths, out, batch_size=2)
    return out, report


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "scores.csv", newline="") as f:
        return list(csv.DictReader(f))


def _all_bytes(folder: Path, skip: str | None = None) -> bytes:
    parts = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and skip not in p.relative_to(folder).parts):
        data = path.read_bytes()
        parts.append(gzip.decompress(data) if path.name.endswith(".gz") else data)
    return b"\n".join(parts)


@pytest.mark.parametrize("key, case", [("series", "case_001"), ("nifti", "case_003"), ("png", "case_004")])
def test_anomaly_map_has_the_input_geometry(run, inputs, key, case):
    out, _ = run
    loaded = load_image(inputs[key])
    written = nib.load(out / case / "anomaly_map.nii.gz")
    assert written.shape == tuple(loaded.shape[1:])
    assert np.allclose(written.affine, loaded.affine.numpy(), atol=1e-4)
    data = written.get_fdata()
    assert np.isfinite(data).all() and data.min() >= 0 and data.max() > 0
    assert (out / case / "overlay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_csv_and_json_hold_typed_consistent_values(run, inputs):
    out, report = run
    on_disk = json.loads((out / "scores.json").read_text())
    assert on_disk["cases"] == report["cases"]
    assert [c["case"] for c in report["cases"]] == ["case_001", "case_003", "case_004"]
    assert [c["input_index"] for c in report["cases"]] == [1, 3, 4]
    scores = [c["score"] for c in report["cases"]]
    for case in report["cases"]:
        assert isinstance(case["score"], float) and isinstance(case["normality"], float)
        assert isinstance(case["label"], int) and isinstance(case["max_slice"], int)
        assert case["score"] == max(case["slice_scores"]) and case["max_slice"] == int(np.argmax(case["slice_scores"]))
        assert case["label"] == int(case["score"] >= 0.05) and case["threshold"] == 0.05
        assert case["label_name"] == ("anomalous" if case["label"] else "normal")
        assert (
            case["threshold_method"] == "quantile" and case["model"] == "model.pt" and len(case["model_sha256"]) == 12
        )
        assert "patient_id" not in case and "input" not in case
    assert [c["num_slices"] for c in report["cases"]] == [4, 3, 1]
    normality = [c["normality"] for c in report["cases"]]
    assert min(normality) == 0.0 and max(normality) == 1.0 and normality[int(np.argmax(scores))] == 0.0  # Eq. 14
    assert report["model"]["modality"] == "CT" and report["model"]["threshold"]["value"] == 0.05
    rows = _rows(out)
    assert list(rows[0]) == list(REPORT_COLUMNS)
    ok = [r for r in rows if r["status"] == "ok"]
    assert [r["case"] for r in ok] == ["case_001", "case_003", "case_004"]
    for row, case in zip(ok, report["cases"], strict=True):
        assert float(row["score"]) == case["score"] and int(row["label"]) == case["label"]
        assert float(row["normality"]) == case["normality"] and int(row["max_slice"]) == case["max_slice"]
    warnings = {r["case"]: r["warnings"] for r in ok}
    assert (
        warnings["case_001"] == "" and "no modality" in warnings["case_003"] and "no modality" in warnings["case_004"]
    )


def test_unreadable_input_is_reported_and_skipped(run, inputs):
    out, report = run
    assert len(report["failures"]) == 1
    failure = report["failures"][0]
    assert failure == {"case": "case_002", "input_index": 2, "error": failure["error"]}
    assert failure["error"].startswith("ImageLoadError: case_002: cannot read NIfTI file") and "\n" not in failure["error"]
    assert "broken" not in failure["error"] and str(inputs["root"]) not in failure["error"]
    failed = [r for r in _rows(out) if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["input_index"] == "2" and failed[0]["score"] == ""
    assert not (out / "case_002").exists()


def test_no_patient_identifiers_and_no_temporary_files_are_left(run):
    out, _ = run
    everything = _all_bytes(out, skip="dicom").lower()  # the DICOM objects carry the patient, by design
    for ident in (PATIENT_NAME, PATIENT_ID, "Synthetic", "patient_id"):
        assert ident.lower().encode() not in everything
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("dicom")) == ["case_001/dicom"]  # DICOM input only
    assert [p.name for p in out.rglob("*") if p.name.startswith(".") or "partial" in p.name] == []
    assert sorted(p.name for p in out.iterdir()) == ["case_001", "case_003", "case_004", "index.html", "scores.csv", "scores.json"]


def test_existing_output_folder_is_refused_without_overwrite(run, inputs):
    out, _ = run
    before = (out / "scores.json").read_bytes()
    with pytest.raises(OutputExistsError, match=r"already holds results \(case_001, .*pass --overwrite"):
        score_cases(inputs["model"], [inputs["nifti"]], out)
    assert (out / "scores.json").read_bytes() == before
    report = score_cases(inputs["model"], [inputs["nifti"]], out, overwrite=True)
    assert [c["case"] for c in report["cases"]] == ["case_001"]
    assert json.loads((out / "scores.json").read_text())["cases"] == report["cases"]


def test_mr_input_to_a_ct_model_is_refused_without_force(inputs, tmp_path):
    with pytest.raises(ModalityMismatchError, match=r"CT.*case_002 \(input 2\) is MR.*--force"):
        score_cases(inputs["model"], [inputs["series"], inputs["mr"]], tmp_path / "refused")
    assert not (tmp_path / "refused").exists()  # refused before anything was written
    report = score_cases(inputs["model"], [inputs["mr"]], tmp_path / "forced", force=True)
    assert report["failures"] == [] and "MR" in report["cases"][0]["warnings"][0]
    assert nib.load(tmp_path / "forced" / "case_001" / "anomaly_map.nii.gz").shape == (24, 20, 3)




@pytest.mark.parametrize("content", [b"", b"garbage, not a model", "truncated"])
def test_corrupted_model_file_is_refused(inputs, tmp_path, content):
    model = tmp_path / "model.pt"
    good = inputs["model"].read_bytes()
    model.write_bytes(good[: len(good) // 2] if content == "truncated" else content)
    with pytest.raises(CheckpointError, match="model.pt"):
        score_cases(model, [inputs["nifti"]], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_identifiers_only_on_request(inputs, tmp_path):
    named = tmp_path / f"{PATIENT_ID}_ct"  # a folder named after the patient, as PACS exports often are
    write_series(named, _volume(2), seed=6)
    report = score_cases(inputs["model"], [named, inputs["nifti"]], tmp_path / "out", include_identifiers=True)
    first, second = report["cases"]
    assert first["case"] == f"{PATIENT_ID}_ct" and first["input"] == str(named)  # asked for: the mapping
    assert first["patient_id"] == PATIENT_ID and second["patient_id"] == "" and second["input"] == str(inputs["nifti"])
    rows = _rows(tmp_path / "out")
    assert list(rows[0])[-2:] == ["input", "patient_id"] and rows[0]["patient_id"] == PATIENT_ID


def test_case_names_from_file_names_are_sanitised_and_unique(inputs, tmp_path):
    other = tmp_path / "a b" / "lidc crop.nii.gz"
    other.parent.mkdir()
    other.write_bytes(inputs["nifti"].read_bytes())
    same = tmp_path / "lidc_crop.nii.gz"
    same.write_bytes(inputs["nifti"].read_bytes())
    report = score_cases(inputs["model"], [inputs["nifti"], same, other], tmp_path / "out", include_identifiers=True)
    assert [c["case"] for c in report["cases"]] == ["lidc_crop", "lidc_crop_2", "lidc_crop_3"]
    default = score_cases(inputs["model"], [inputs["nifti"], same, other], tmp_path / "default")
    assert [c["case"] for c in default["cases"]] == ["case_001", "case_002", "case_003"]


def test_cli_score_writes_the_report_and_says_where(inputs, tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["score", "--model", str(inputs["model"]), "--input", str(inputs["nifti"]), "--output", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert str(out / "scores.csv") in printed and "1 case(s)" in printed
    assert main(args) == 2  # the folder now exists
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args[:4], str(inputs["nifti"]), str(inputs["broken"]), "--output", str(tmp_path / "b")]) == 1
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    helptext = capsys.readouterr().out
    for option in (
        "--model",
        "--input",
        "--output",
        "--device",
        "--series-uid",
        "--force",
        "--overwrite",
        "--include-identifiers",
    ):
        assert option in helptext


def test_the_case_score_skips_slices_with_less_body_than_the_models_normals(tmp_path):
    """The real brain T1 (78 slices, the ends of the head nearly empty) scored with models whose
    threshold entries store the slice-coverage rule: the slices below the floor are exactly those a
    numpy foreground count of the preprocessed volume puts there, they are listed and not counted,
    and the case score is the maximum over the others; without the entry every slice counts."""
    from mama_monai.data.demo import load_demo_brain
    from mama_monai.data.preprocessing import Preprocessor

    brain = load_demo_brain()["image"]
    scoring = {"sigma": 1.0, "reduction": "max", "foreground_threshold": 0.02, "border": 0}

    def case(name: str, floor: float | None) -> dict:
        entry = {"value": 0.3, "method": "quantile"}
        if floor is not None:
            entry["slice_coverage"] = {"factor": 1.0, "min_normal_fraction": floor, "floor": floor}
        model = tiny_model_file(tmp_path / f"{name}.pt", entry, "MR", scoring=scoring, zero=True, preset="mri_t1")
        return score_cases(model, [brain], tmp_path / name)["cases"][0]

    volume = Preprocessor("mri_t1", [32, 32])({"image": str(brain)})["image"].as_tensor()[0]  # (W, H, D)
    fractions = (volume > 0.02).float().mean(dim=(0, 1)).numpy()  # the zero network's map is > 0 exactly there
    every = case("every", None)
    scores = np.asarray(every["slice_scores"])
    assert every["slices_not_counted"] == [] and every["score"] == float(scores.max())
    # a floor of 0.15: the two ends of the head do not count
    ends = case("ends", 0.15)
    low = [int(i) for i in np.flatnonzero(fractions < 0.15)]
    assert low[:2] == [0, 1] and low[-1] == 77 and 0 < len(low) < 30
    assert ends["slices_not_counted"] == low and ends["slices_counted"] == 78 - len(low)
    assert ends["slice_scores"] == every["slice_scores"]  # the rule changes the case score only
    # a floor just above the body fraction of the highest-scoring slice: that slice no longer decides
    top = int(np.argmax(scores))
    floor = float(fractions[top]) + 1e-4
    above = case("above", floor)
    kept = np.flatnonzero(fractions >= floor)
    assert top not in kept and len(kept) > 0
    assert above["max_slice"] == int(kept[np.argmax(scores[kept])]) and above["score"] == float(scores[kept].max())
    named = [int(i) for i in np.flatnonzero((fractions < floor) & (scores >= 0.3))]  # counted out, above the threshold
    assert named and any(f"slice(s) {', '.join(map(str, named))} score above" in w for w in above["warnings"])
