"""The bundle as MONAI's workflow API and the model-zoo CI see it (docs/README.md, "Model-zoo conformance").

- ``ConfigWorkflow(...).check_properties()`` is empty for train and infer (required properties and
  the optional ones whose references are checked);
- the model-zoo CI's checks (``ci/verify_bundle.py``), offline: bundle directory, version in the
  changelog, metadata against the schema, ``verify_net_in_out`` with ``configs/inference.yaml``
  alone, ``ckpt_export`` of ``models/model.pt`` into TorchScript;
- the inference workflow gives the maps and scores of ``mama-monai score``, and its components
  (dataset -> inferer -> postprocessing) the same slice scores.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch
from monai.bundle import ConfigWorkflow, ckpt_export, verify_metadata, verify_net_in_out

from mama_monai.data import load_demo_ct
from tests.bundle.conftest import NETWORK, REPO, bundle_command, run_bundle
from tests.data.conftest import write_series
from tests.model_files import tiny_model_file

META = str(REPO / "configs/metadata.json")
LOGGING = str(REPO / "configs/logging.conf")
INFERENCE = str(REPO / "configs/inference.yaml")


def _workflow(kind: str, files, **override) -> ConfigWorkflow:
    wf = ConfigWorkflow(config_file=files, meta_file=META, logging_file=LOGGING, workflow_type=kind, **override)
    wf.initialize()
    return wf


def test_infer_workflow_has_every_property():
    wf = _workflow("infer", INFERENCE)
    assert wf.check_properties() == []
    # as the model-zoo's ci/verify_properties.py builds it
    from monai.bundle import create_workflow

    made = create_workflow(workflow_type="infer", config_file=INFERENCE, meta_file=META, logging_file=LOGGING, bundle_root=str(REPO))
    assert made.check_properties() == []
    assert list(wf.dataset.transform.transforms) == [wf.preprocessing]  # the optional preprocessing is the one the dataset uses
    assert isinstance(wf.network_def, torch.nn.Module)


def test_train_workflow_has_every_property():
    wf = _workflow("train", [str(REPO / "configs/train.yaml"), str(REPO / NETWORK)])
    assert wf.check_properties() == []
    assert wf.max_epochs is None and wf.trainer.dataset is wf.train_dataset


def test_check_properties_reports_a_missing_property(tmp_path):
    """The check used above can fail: an inference config without ``inferer`` is reported (MONAI 1.6.1's
    ``check_properties`` raises the KeyError of the first missing required property)."""
    import yaml

    config = yaml.safe_load(Path(INFERENCE).read_text())
    del config["inferer"]
    (tmp_path / "inference.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(KeyError, match="'inferer'"):
        _workflow("infer", str(tmp_path / "inference.yaml")).check_properties()


def test_max_epochs_sets_whole_passes_over_the_training_slices(monkeypatch, tmp_path):
    """A workflow client's ``max_epochs`` = passes over train#dataset, in optimiser steps."""
    import mama_monai.workflows.training as training
    from mama_monai.workflows.bundle import BundleTrainer
    from mama_monai.workflows.config import workflow_config

    seen = {}

    class Slices:
        def splits(self, parser):
            return {"train": list(range(37)), "val": []}

    def fake_train_model(parser, train, val, output_dir, ctx, **kwargs):
        seen["iterations"] = parser["training#iterations"]
        return type("R", (), {"iterations": 0, "seconds": 0.0, "model_path": output_dir})()

    monkeypatch.setattr(training, "train_model", fake_train_model)
    parser = workflow_config("mamanet_compact", overrides={"training#batch_size": 8, "training#val_interval": 4})
    BundleTrainer(tmp_path, device="cpu", dataset=Slices(), max_epochs=3).run(parser)
    assert seen["iterations"] == 16  # 3 passes x ceil(37 / 8) = 15 steps, rounded up to a multiple of 4


def test_verify_net_in_out_with_inference_config_alone():
    """The model-zoo CI's data-shape check, exactly as its command line runs it."""
    import subprocess

    args = ["verify_net_in_out", "network_def", "--meta_file", META, "--config_file", INFERENCE, "--device", "cpu"]
    done = subprocess.run(bundle_command(*args), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "data shape of network is verified with no error" in done.stdout + done.stderr


def test_model_zoo_ci_checks_offline(trained):
    """ci/verify_bundle.py's checks on a bundle root holding a trained models/model.pt."""
    root = trained.parent  # <tmp>/models/model.pt: this folder is the bundle root
    meta = json.loads(Path(META).read_text())
    assert meta["version"] in meta["changelog"]  # verify_version_changes
    assert not list(REPO.glob("large_files.*"))  # verify_bundle_directory: nothing to download
    verify_metadata(meta_file=META, filepath=str(REPO / "configs/schema/metadata_schema.json"))  # verify_metadata_format
    # verify_data_shape: the model file's own network (32 x 32 here) through the inference config
    verify_net_in_out(
        net_id="network_def", meta_file=META, config_file=INFERENCE, bundle_root=str(root), device="cpu",
        **{"_meta_#network_data_format#inputs#image#spatial_shape": [32, 32]},
    )  # fmt: skip
    # verify_torchscript: ckpt_export of models/model.pt (our documented key_in_ckpt) -> loads and matches
    ts = root / "models" / "verify_model.ts"
    ckpt_export(
        net_id="network_def", filepath=str(ts), ckpt_file=str(root / "models/model.pt"), meta_file=META,
        config_file=INFERENCE, bundle_root=str(root), key_in_ckpt="state_dict",
    )  # fmt: skip
    from mama_monai.engines import load_model

    network, _ = load_model(root / "models/model.pt")
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(ts))(x), network(x), atol=1e-5, rtol=1e-5)
    ts.unlink()


def test_ckpt_export_without_key_in_ckpt_refuses_the_model_file(trained, tmp_path):
    """Without ``key_in_ckpt`` the whole model file is no state dict: refused loudly, never exported untrained."""
    with pytest.raises(RuntimeError, match="Unexpected key"):
        ckpt_export(
            net_id="network_def", filepath=str(tmp_path / "m.ts"), ckpt_file=str(trained / "model.pt"), meta_file=META,
            config_file=INFERENCE, bundle_root=str(trained.parent),
        )  # fmt: skip
    assert not (tmp_path / "m.ts").exists()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """The real demo CT as a NIfTI crop and as NRRD, plus a 3-slice DICOM series of it."""
    folder = tmp_path_factory.mktemp("bundle_inputs")
    img = nib.load(load_demo_ct()["image"])
    crop = img.slicer[20:84, 10:74, 60:63]
    nib.save(nib.Nifti1Image(np.asarray(crop.dataobj).astype(np.int16), crop.affine), folder / "ct_crop.nii.gz")
    sitk.WriteImage(sitk.ReadImage(str(folder / "ct_crop.nii.gz")), str(folder / "ct_crop.nrrd"))
    hu = np.asarray(img.dataobj)[30:70, 30:66, 70:73]  # (x, y, z) -> stored (slices, rows, columns)
    write_series(folder / "series_a", np.transpose(hu, (2, 1, 0)) + 1024)
    return folder


def test_inference_workflow_gives_the_maps_and_scores_of_mama_monai_score(inputs, tmp_path):
    from mama_monai.cli import main

    model = tiny_model_file(tmp_path / "model.pt")
    found = sorted(str(p) for p in inputs.iterdir())
    assert main(["score", "--model", str(model), "--input", *found, "--output", str(tmp_path / "cli")]) == 0
    wf = _workflow("infer", INFERENCE, dataset_dir=str(inputs), ckpt_path=str(model), output_dir=str(tmp_path / "bundle"), device="cpu")
    wf.run()
    cli = json.loads((tmp_path / "cli" / "scores.json").read_text())["cases"]
    bundle = json.loads((tmp_path / "bundle" / "scores.json").read_text())["cases"]
    assert [c["case"] for c in bundle] == ["case_001", "case_002", "case_003"]
    for a, b in zip(cli, bundle):
        assert (a["score"], a["label"], a["slice_scores"]) == (b["score"], b["label"], b["slice_scores"])
        ma, mb = nib.load(tmp_path / "cli" / a["anomaly_map"]), nib.load(tmp_path / "bundle" / b["anomaly_map"])
        np.testing.assert_array_equal(np.asarray(ma.dataobj), np.asarray(mb.dataobj))
        np.testing.assert_array_equal(ma.affine, mb.affine)

    # the components, chained by hand, compute the same slice scores
    for k, item in enumerate(wf.dataset):
        with torch.no_grad():
            pred = wf.inferer(item["image"].as_tensor()[None].float(), wf.network_def)[0]
        out = wf.postprocessing({"image": item["image"].as_tensor(), "pred": pred})
        np.testing.assert_allclose(out["slice_scores"].double().numpy(), bundle[k]["slice_scores"], rtol=1e-5, atol=1e-8)
        assert out["score"] == pytest.approx(bundle[k]["score"], rel=1e-5)  # the case score, by the same rule
        assert np.flatnonzero(~out["slice_counted"].numpy()).tolist() == bundle[k]["slices_not_counted"]
    # the NRRD's map lies on the NIfTI's grid (same voxels in world space)
    nrrd_map, nifti_map = (nib.load(tmp_path / "bundle" / c["anomaly_map"]) for c in bundle[1::-1])
    np.testing.assert_allclose(nrrd_map.affine, nifti_map.affine, atol=1e-4)
    np.testing.assert_allclose(np.asarray(nrrd_map.dataobj), np.asarray(nifti_map.dataobj), rtol=1e-5, atol=1e-7)
