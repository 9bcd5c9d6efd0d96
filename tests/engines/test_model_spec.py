"""The typed model spec reads exactly what training stored, and builds what inference needs from it."""

from __future__ import annotations

import torch

from mama_monai.data.preprocessing import Preprocessor
from mama_monai.engines import read_checkpoint
from mama_monai.engines.model_spec import ModelSpec, TrainingSplit, load_model_spec
from tests.model_files import tiny_model_file


def test_spec_fields_are_the_stored_values(tmp_path):
    path = tiny_model_file(tmp_path / "model.pt", 0.05)
    payload = read_checkpoint(path)
    network, spec = load_model_spec(path)
    pre = payload["config"]["preprocessing"]
    assert (spec.preset, list(spec.spatial_size), spec.modality) == (pre["preset"], pre["spatial_size"], pre.get("modality"))
    assert spec.threshold == payload["threshold"]["value"] == 0.05
    assert spec.threshold_entry == payload["threshold"] and spec.scoring == payload["config"]["scoring"]
    assert spec.data_overrides() == {"data#preset": "ct_lung", "data#spatial_size": [32, 32], "data#modality": pre.get("modality")}
    assert spec.crop_to_body is False  # the file stores no crop_to_body: written before the crop to the body existed
    assert not network.training
    assert len(spec.sha256) == 64


def test_spec_builds_the_anomaly_map_and_preprocessor_training_used(tmp_path):
    path = tiny_model_file(tmp_path / "model.pt", 0.05)
    spec = ModelSpec.from_payload(path, read_checkpoint(path))
    scoring = read_checkpoint(path)["config"]["scoring"]
    amap = spec.anomaly_map()
    assert {k: getattr(amap, k) for k in ("sigma", "reduction")} == {k: scoring[k] for k in ("sigma", "reduction")}
    pre = spec.preprocessor()
    assert isinstance(pre, Preprocessor) and (pre.preset, pre.spatial_size, pre.crops) == ("ct_lung", [32, 32], False)
    cropping = tiny_model_file(tmp_path / "cropping.pt", 0.05, crop_to_body=True)
    assert ModelSpec.from_payload(cropping, read_checkpoint(cropping)).preprocessor().crops


def test_training_split_is_recorded_or_none(tmp_path):
    path = tiny_model_file(tmp_path / "model.pt", 0.05)
    payload = read_checkpoint(path)
    payload["config"]["preprocessing"].update(manifest="data_manifests/x.json", fold=2)
    assert ModelSpec.from_payload(path, payload).trained_on == TrainingSplit("data_manifests/x.json", 2)
    del payload["config"]["preprocessing"]["manifest"]
    assert ModelSpec.from_payload(path, payload).trained_on is None


def test_spec_network_equals_load_model(tmp_path):
    path = tiny_model_file(tmp_path / "model.pt", 0.05)
    network, spec = load_model_spec(path)
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(spec.network()(x), network(x))


def test_an_mr_preset_crops_only_in_files_written_under_crop_rule_2(tmp_path):
    """Files of crop rule 1 (no ``crop_rule``) stored crop_to_body true for every preset but only the
    CT presets cropped then: an MR model of that time is scored uncropped, as it was trained."""
    cases = [
        ("ct_lung", {"crop_to_body": True}, True),  # rule 1: the CT presets crop
        ("mri_t1", {"crop_to_body": True}, False),  # rule 1: the MR presets did not
        ("mri_t1", {"crop_to_body": True, "crop_rule": 2}, True),
        ("mri_zscore", {"crop_to_body": False, "crop_rule": 2}, False),
        ("cxr", {"crop_to_body": True, "crop_rule": 2}, False),  # no crop in the preset at all
    ]
    for i, (preset, stored, expected) in enumerate(cases):
        path = tiny_model_file(tmp_path / f"m{i}.pt", 0.05, preset=preset, **stored)
        spec = ModelSpec.from_payload(path, read_checkpoint(path))
        assert spec.crop_to_body is expected, (preset, stored)
        assert spec.preprocessor().crops is expected, (preset, stored)


def test_an_unknown_crop_rule_is_refused_by_name(tmp_path):
    import pytest

    from mama_monai.engines.checkpoint import CheckpointError

    path = tiny_model_file(tmp_path / "m.pt", 0.05, crop_to_body=True, crop_rule=3)
    with pytest.raises(CheckpointError, match=r"is refused: config\.preprocessing\.crop_rule: must be one of \[1, 2\], got 3"):
        read_checkpoint(path)
