"""``python -m monai.bundle run`` with the train, inference and evaluate configs, on CPU and the demo data."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import run

from mama_monai.data import load_demo_ct
from mama_monai.workflows.bundle import BundleConfigError, bundle_inputs, dataset_manifest
from tests.bundle.conftest import NETWORK, REPO, TINY, run_bundle
from tests.data.conftest import write_series


def _inputs(folder: Path) -> Path:
    """A crop of the real demo CT as NIfTI and a 3-slice DICOM series, in one dataset_dir."""
    folder.mkdir(parents=True, exist_ok=True)
    img = nib.load(load_demo_ct()["image"])
    crop = np.asarray(img.dataobj)[20:84, 10:74, 60:63]
    nib.save(nib.Nifti1Image(crop.astype(np.int16), img.affine), folder / "ct_crop.nii.gz")
    rows, cols = np.meshgrid(np.arange(24), np.arange(20), indexing="ij")
    write_series(folder / "series_a", np.stack([(rows * 30 + cols * 5 + 100 * k).astype(np.int16) for k in range(3)]))
    (folder / "notes.txt").write_text("not an image")
    return folder


def _overrides(pairs: list[str]) -> dict:
    import yaml

    return {k[2:]: yaml.safe_load(v) for k, v in zip(pairs[::2], pairs[1::2])}


def _error_chain(err: BaseException) -> str:
    parts = []
    while err is not None:
        parts.append(str(err))
        err = err.__cause__ or err.__context__
    return "\n".join(parts)


def test_train_run_writes_model_file(trained):
    payload = torch.load(trained / "model.pt", weights_only=True)
    assert payload["config"]["network_def"]["channels"] == [8, 16, 16]
    assert payload["config"]["preprocessing"]["spatial_size"] == [32, 32]
    assert payload["metrics"]["iterations"] == 10
    assert payload["config"]["preprocessing"]["manifest"] is None  # dataset_dir null = embedded demo
    assert list((trained / "checkpoints").glob("last_*.pt"))


def test_inference_run_writes_maps_on_input_grid(trained, tmp_path):
    data = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    run_bundle(
        "run", "--config_file", "configs/inference.yaml", "--dataset_dir", str(data),
        "--ckpt_path", str(trained / "model.pt"), "--output_dir", str(out), "--device", "cpu",
    )  # fmt: skip
    ct = nib.load(data / "ct_crop.nii.gz")
    ct_map = nib.load(out / "case_001" / "anomaly_map.nii.gz")  # inputs sorted: ct_crop.nii.gz, series_a
    assert ct_map.shape == ct.shape
    np.testing.assert_allclose(ct_map.affine, ct.affine, atol=1e-4)
    series_map = nib.load(out / "case_002" / "anomaly_map.nii.gz")
    assert series_map.shape == (20, 24, 3)  # columns, rows, slices: the series' own grid
    assert np.isfinite(np.asarray(ct_map.dataobj)).all()
    assert (out / "scores.csv").is_file() and (out / "scores.json").is_file()


def test_evaluate_config_scores_the_test_split(trained, tmp_path):
    run(
        config_file=[str(REPO / "configs/train.yaml"), str(REPO / NETWORK), str(REPO / "configs/evaluate.yaml")],
        bundle_root=str(REPO), ckpt_path=str(trained / "model.pt"), device="cpu",
        **{"validate#evaluator#output_dir": str(tmp_path / "eval")}, **_overrides(TINY),
    )  # fmt: skip
    import json

    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert 0.0 <= report["image"]["auroc"] <= 1.0


def test_bundle_inputs_finds_dicom_series_and_nifti(tmp_path):
    data = _inputs(tmp_path)
    assert bundle_inputs(data) == sorted([str(data / "ct_crop.nii.gz"), str(data / "series_a")])


def test_missing_dataset_dir_train_names_key_and_value(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(Exception) as info:
        run(
            config_file=[str(REPO / "configs/train.yaml"), str(REPO / NETWORK)], bundle_root=str(REPO),
            dataset_dir=str(missing), output_dir=str(tmp_path / "models"), device="cpu", **_overrides(TINY),
        )  # fmt: skip
    message = _error_chain(info.value)
    assert "dataset_dir" in message and str(missing) in message and "does not exist" in message
    assert not (tmp_path / "models").exists()


def test_missing_dataset_dir_inference_names_key_and_value(trained, tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(Exception) as info:
        run(config_file=str(REPO / "configs/inference.yaml"), dataset_dir=str(missing), ckpt_path=str(trained / "model.pt"),
            output_dir=str(tmp_path / "out"), device="cpu")  # fmt: skip
    message = _error_chain(info.value)
    assert "dataset_dir" in message and str(missing) in message


def test_dataset_dir_folder_without_manifest_is_refused(tmp_path):
    with pytest.raises(BundleConfigError, match="dataset_dir .* is a folder without manifest.json"):
        dataset_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{}")
    assert dataset_manifest(tmp_path) == str(tmp_path / "manifest.json")


@pytest.mark.parametrize("kind", ["training_checkpoint", "mismatched_weights"])
def test_incompatible_checkpoint_names_key_and_value(trained, tmp_path, kind):
    if kind == "training_checkpoint":  # an ignite checkpoint, not a model file
        bad = sorted((trained / "checkpoints").glob("last_*.pt"))[-1]
    else:  # a model file whose weights do not match its network_def
        payload = torch.load(trained / "model.pt", weights_only=True)
        payload["config"]["network_def"]["channels"] = [8, 16, 32]
        bad = tmp_path / "model.pt"
        torch.save(payload, bad)
    data = _inputs(tmp_path)
    with pytest.raises(Exception) as info:
        run(config_file=str(REPO / "configs/inference.yaml"), dataset_dir=str(data), ckpt_path=str(bad),
            output_dir=str(tmp_path / "out"), device="cpu")  # fmt: skip
    message = _error_chain(info.value)
    assert "ckpt_path" in message and str(bad) in message
    assert not (tmp_path / "out").exists()


def test_cli_and_bundle_train_the_same_model(trained, tmp_path):
    """One config system: ``mama-monai train`` with the same overrides gives the same weights and threshold."""
    from mama_monai.cli import main

    args = ["train", "--output", str(tmp_path / "cli"), "--device", "cpu", "--training#iterations", "10", "--training#val_interval", "10"]
    assert main(args + TINY) == 0
    cli = torch.load(tmp_path / "cli" / "model.pt", weights_only=True)
    bundle = torch.load(trained / "model.pt", weights_only=True)
    assert cli["config"] == bundle["config"]
    assert cli["threshold"]["value"] == pytest.approx(bundle["threshold"]["value"], rel=1e-5)
    for key, value in bundle["state_dict"].items():
        torch.testing.assert_close(cli["state_dict"][key], value, atol=1e-5, rtol=1e-5)
