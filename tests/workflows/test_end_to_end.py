"""End to end on the embedded real demo data (LIDC-IDRI-0001 chest CT), tiny config, CPU.

``mama-monai train`` (tiny MAMA Net) -> ``mama-monai evaluate`` -> ``mama-monai score`` on a DICOM
series and a NIfTI file cut from the same real CT, all in-process through ``cli.main``; then the
demo workflow into a temporary folder.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from mama_monai.cli import main
from mama_monai.data import load_demo_ct, load_image
from mama_monai.engines import read_checkpoint
from mama_monai.workflows.demo_run import run_demo
from tests.data.conftest import ras_affine_from_sitk, write_series

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# a block of the demo CT through the lungs: voxels [37:133, 25:105, 60:66] of the 170 x 129 x 133 volume
CROP = (slice(37, 133), slice(25, 105), slice(60, 66))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny) -> Path:
    """A tiny MAMA Net trained by ``mama-monai train`` on the demo data; returns the run folder."""
    run = tmp_path_factory.mktemp("train") / "run"
    argv = ["train", "--network", "mamanet_compact", "--output", str(run), "--device", "cpu", *tiny.args, *tiny.mamanet]
    assert main(argv) == 0
    return run


@pytest.fixture(scope="module")
def ct_inputs(tmp_path_factory) -> dict[str, Path]:
    """The same block of the real demo CT as a NIfTI file and as a DICOM CT series with the CT's geometry."""
    root = tmp_path_factory.mktemp("ct_inputs")
    ct = nib.load(load_demo_ct()["image"])
    crop = ct.slicer[CROP]
    nib.save(crop, root / "lidc_crop.nii.gz")
    hu = np.asarray(crop.dataobj).astype(np.int16)  # (x, y, z) voxels, x towards patient left (LPS axes)
    origin_ras = crop.affine @ np.array([0.0, 0.0, 0.0, 1.0])
    origin_lps = (-origin_ras[0], -origin_ras[1], origin_ras[2])
    dx, dy, dz = (float(z) for z in crop.header.get_zooms())
    assert nib.aff2axcodes(crop.affine) == ("L", "P", "S")  # so DICOM's row/column cosines are the identity
    write_series(
        root / "lidc_dicom",
        np.stack(
            [(hu[:, :, k].T + 1024) for k in range(hu.shape[2])]
        ),  # (slices, rows = y, columns = x), stored = HU + 1024
        spacing=(dy, dx, dz),
        origin=origin_lps,
        orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
        rescale=(1.0, -1024.0),
    )
    return {"nifti": root / "lidc_crop.nii.gz", "dicom": root / "lidc_dicom"}


def test_train_writes_a_complete_model_file(trained):
    payload = read_checkpoint(trained / "model.pt")
    assert payload["metrics"]["iterations"] == 20
    assert [row["iteration"] for row in payload["metrics"]["history"]] == [10, 20]
    assert all(0.0 <= row["val_auroc"] <= 1.0 for row in payload["metrics"]["history"])
    config = payload["config"]
    assert config["network_def"]["_target_"] == "mama_monai.networks.MAMANet"
    assert config["network_def"]["channels"] == [8, 16, 16] and config["network_def"]["num_slots"] == 16
    assert config["preprocessing"]["spatial_size"] == [32, 32] and config["preprocessing"]["modality"] == "CT"
    assert payload["threshold"]["value"] > 0 and payload["threshold"]["n_normals"] > 0
    assert list((trained / "checkpoints").glob("last_*.pt"))


def test_evaluate_reports_image_and_pixel_metrics_and_plots(trained, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(trained / "model.pt"), "--output", str(out), "--device", "cpu"]) == 0
    assert str(out / "report.json") in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["n_cases"] == 39  # the demo's test split: 11 nodule slices + 28 matched normal slices
    assert sum(case["label"] for case in report["cases"]) == 11
    image = report["image"]
    for key in ("auroc", "sensitivity", "specificity", "f1"):
        assert 0.0 <= image[key] <= 1.0, key
    low, high = image["auroc_ci95"]
    assert low <= image["auroc"] <= high
    assert 0.0 <= report["pixel_auroc"] <= 1.0  # the radiologists' masks exist for the nodule slices
    assert report["threshold"] == read_checkpoint(trained / "model.pt")["threshold"]
    assert len(report["plots"]) == 4
    for plot in report["plots"]:
        assert Path(plot).parent == out / "plots" and Path(plot).read_bytes()[:8] == PNG_MAGIC


def test_dicom_and_nifti_inputs_hold_the_same_ct(ct_inputs):
    """Precondition of the next test: the DICOM series written above is the NIfTI crop, same grid."""
    from_dicom, from_nifti = load_image(ct_inputs["dicom"]), load_image(ct_inputs["nifti"])
    assert from_dicom.shape == from_nifti.shape == (1, 96, 80, 6)
    assert np.allclose(from_dicom.affine.numpy(), from_nifti.affine.numpy(), atol=1e-4)
    assert np.array_equal(from_dicom.numpy(), from_nifti.numpy())


def test_score_dicom_folder_and_nifti_maps_on_the_input_grids(trained, ct_inputs, tmp_path):
    out = tmp_path / "scores"
    argv = ["score", "--model", str(trained / "model.pt"), "--input", str(ct_inputs["dicom"]), str(ct_inputs["nifti"])]
    assert main([*argv, "--output", str(out)]) == 0

    nifti_in = nib.load(ct_inputs["nifti"])
    nifti_map = nib.load(out / "case_002" / "anomaly_map.nii.gz")
    assert nifti_map.shape == nifti_in.shape == (96, 80, 6)
    assert np.allclose(nifti_map.affine, nifti_in.affine, atol=1e-4)

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(ct_inputs["dicom"])))
    series = reader.Execute()
    dicom_map = nib.load(out / "case_001" / "anomaly_map.nii.gz")
    assert dicom_map.shape == series.GetSize() == (96, 80, 6)
    assert np.allclose(dicom_map.affine, ras_affine_from_sitk(series), atol=1e-4)
    assert np.allclose(dicom_map.affine, load_image(ct_inputs["dicom"]).affine.numpy(), atol=1e-4)

    # the same CT through two containers: the same map and score
    maps = dicom_map.get_fdata(), nifti_map.get_fdata()
    assert np.isfinite(maps[0]).all() and maps[0].max() > 0
    assert np.allclose(*maps, atol=1e-5)
    with open(out / "scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["case"], r["status"]) for r in rows] == [("case_001", "ok"), ("case_002", "ok")]
    assert float(rows[0]["score"]) == pytest.approx(float(rows[1]["score"]), rel=1e-5)
    threshold = read_checkpoint(trained / "model.pt")["threshold"]["value"]
    for row in rows:
        assert float(row["threshold"]) == pytest.approx(threshold) and int(row["num_slices"]) == 6
        assert int(row["label"]) == int(float(row["score"]) >= float(row["threshold"]))
        assert (out / row["case"] / "overlay.png").read_bytes()[:8] == PNG_MAGIC


def test_demo_writes_model_report_plots_and_maps_and_never_overwrites_silently(tmp_path, tiny, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "notes.txt").write_text("kept")  # a non-empty folder, allowed with overwrite
    report = run_demo(out, overrides=tiny.overrides, device="cpu", overwrite=True, progress=False)

    assert (out / "notes.txt").read_text() == "kept"
    on_disk = json.loads((out / "report.json").read_text())
    assert set(on_disk["models"]) == {"mamanet", "autoencoder", "memae"} == set(report["models"])  # configs/demo.yaml
    for name, model in on_disk["models"].items():
        assert model["iterations"] == 20
        assert 0.0 <= model["test"]["image"]["auroc"] <= 1.0
        assert read_checkpoint(model["model_file"])["metrics"]["iterations"] == 20
        for kind in ("roc", "score_histograms", "normality", "montage"):
            assert (out / "plots" / f"{name}_{kind}.png").read_bytes()[:8] == PNG_MAGIC
    assert on_disk["models"]["mamanet"]["model_file"] == str(out / "model.pt")
    assert read_checkpoint(out / "model.pt")["config"]["network_def"]["_target_"] == "mama_monai.networks.MAMANet"
    assert on_disk["data"]["n_test_anomalous"] == 11 and on_disk["data"]["spatial_size"] == [32, 32]

    ct = nib.load(load_demo_ct()["image"])
    ct_map = nib.load(out / "scores" / "case_001" / "anomaly_map.nii.gz")
    assert ct_map.shape == ct.shape and np.allclose(ct_map.affine, ct.affine, atol=1e-4)
    with open(out / "scores" / "scores.csv", newline="") as f:
        assert [r["case"] for r in csv.DictReader(f)] == ["case_001"]

    before = (out / "report.json").read_bytes()
    with pytest.raises(ValueError, match="not empty.*--overwrite"):
        run_demo(out, overrides=tiny.overrides, device="cpu")
    assert main(["demo", "--output", str(out), "--device", "cpu", *tiny.args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mama-monai demo: error:") and str(out) in err and "--overwrite" in err
    assert "\n" not in err
    assert (out / "report.json").read_bytes() == before
