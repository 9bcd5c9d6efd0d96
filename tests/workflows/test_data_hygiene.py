"""What training, validation and evaluation may see: pinned against the demo's known split."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest
import torch

from mama_monai.data.demo import demo_slice_table
from mama_monai.workflows.splits import prepare_splits
from mama_monai.workflows.config import workflow_config
from mama_monai.workflows.metrics_report import evaluate_items


@pytest.fixture(scope="module")
def splits():
    parser = workflow_config("autoencoder", overrides={"data#spatial_size": [32, 32], "data#num_workers": 0})
    return prepare_splits(parser)


def test_training_sees_only_normal_training_slices_disjoint_from_validation_and_test(splits):
    table = {row["slice_index"]: row for row in demo_slice_table("lidc")}
    train_ids = {it["case_id"] for it in splits["train"]}
    val_normal = [it for it in splits["val"] if it["label"] == 0]
    test_ids = {it["case_id"] for it in splits["test"]}
    assert all(it["label"] == 0 and not it["simulated"] for it in splits["train"])
    lidc = [it for it in splits["train"] + val_normal if it["case_id"].startswith("lidc")]
    assert all(table[it["slice_index"]]["split"] == "train" for it in lidc)
    assert train_ids.isdisjoint({it["case_id"] for it in val_normal}) and train_ids.isdisjoint(test_ids)
    assert len(lidc) == 75  # every 'train' slice of DESIGN.md §7, once
    second = sorted(it["slice_index"] for it in splits["train"] + val_normal if it["case_id"].startswith("totalseg"))
    assert second == list(range(115))  # and every slice of the second patient's CT, once
    assert all(it["case_id"].startswith("lidc") for it in splits["test"])  # the test is LIDC-IDRI-0001's alone
    # validation anomalies are SIMULATED copies of the held-out normals, never real nodules
    val_anomalous = [it for it in splits["val"] if it["label"] == 1]
    assert val_anomalous and all(it["simulated"] for it in val_anomalous)
    source = Counter(re.sub(r"_simulated(_\d+)?$", "", it["case_id"]) for it in val_anomalous)
    # configs/train.yaml's validation_lesion_copies: auto, ceil(200 / 38 held-out slices) = 6 copies of each
    assert source == {it["case_id"]: 6 for it in val_normal} and len(val_normal) == 38
    assert sorted(table[it["slice_index"]]["split"] for it in splits["test"] if it["label"] == 1) == ["anomalous"] * 11


def test_user_overrides_beat_a_networks_recommended_overrides():
    # configs/network/memae.yaml recommends loss#memory_weight 0.0002; the user's value wins
    assert workflow_config("memae")["loss#memory_weight"] == 0.0002
    assert workflow_config("memae", overrides={"loss#memory_weight": 0.5})["loss#memory_weight"] == 0.5
    assert workflow_config("mamanet_compact", overrides={"loss#wasserstein_weight": 1.0})["loss#wasserstein_weight"] == 1.0


def test_the_bundle_resolves_keys_as_the_cli_and_a_user_value_equal_to_the_default_still_wins(monkeypatch, tmp_path):
    # The bundle once re-applied a network's recommended values over any user value that happened
    # to equal train.yaml's default: MemAE's memory_weight 1.0 (train.yaml's) set by the user became 0.0002.
    from monai.bundle import ConfigParser

    import mama_monai.workflows.training as training
    from mama_monai.workflows.bundle import BundleTrainer
    from mama_monai.workflows.config import configs_dir

    seen = {}

    def record(parser, *args, **kwargs):  # stands in for training: keeps the config it was handed
        seen["parser"] = parser
        return training.TrainResult(network=None, model_path=None, threshold={})

    monkeypatch.setattr(training, "train_model", record)
    parser = ConfigParser()  # what `python -m monai.bundle run --config_file [train, memae] --loss#memory_weight 1.0` builds
    parser.read_config([str(configs_dir() / "train.yaml"), str(configs_dir() / "network" / "memae.yaml")])
    assert parser.get()["loss"] == workflow_config("memae").get()["loss"]  # the same keys from the same files
    parser["loss#memory_weight"] = 1.0
    BundleTrainer(tmp_path, device="cpu", dataset=_NoSplits()).run(parser)
    assert seen["parser"]["loss#memory_weight"] == 1.0
    assert workflow_config("memae", overrides={"loss#memory_weight": 1.0})["loss#memory_weight"] == 1.0


class _NoSplits:
    def splits(self, parser):
        return {"train": [], "val": []}


class _Echo(torch.nn.Module):
    """Reconstruction = the input with a fixed offset: the anomaly score is known in advance."""

    spatial_dims = 2

    def __init__(self, offset: float) -> None:
        super().__init__()
        self.offset = offset

    def forward(self, x):
        return x + self.offset


def _items(values, labels):
    return [
        {"image": torch.full((1, 8, 8), v), "mask": torch.zeros(1, 8, 8), "has_mask": False, "label": y, "case_id": f"c{i}"}
        for i, (v, y) in enumerate(zip(values, labels))
    ]


def test_operating_points_come_from_the_model_files_thresholds_never_from_the_test_set():
    # every pixel's squared error is offset^2 = 0.01, so every score is 0.01: the AUROC is 0.5 and
    # the operating point depends only on the threshold given
    items = _items([0.5] * 6, [0, 0, 0, 1, 1, 1])
    scoring = {"sigma": 0.0, "reduction": "max"}
    low = evaluate_items(_Echo(0.1), scoring, {"value": 0.005, "mean_error": {"value": 0.02}}, items, torch.device("cpu"))
    assert (low["image"]["sensitivity"], low["image"]["specificity"]) == (1.0, 0.0)  # 0.01 >= 0.005: all called anomalous
    assert (low["image_mean_error"]["sensitivity"], low["image_mean_error"]["specificity"]) == (0.0, 1.0)  # 0.01 < 0.02
    # no calibrated e_u threshold: its operating point is not reported (the first release took the
    # 95th percentile of the TEST normals here)
    bare = evaluate_items(_Echo(0.1), scoring, 0.005, items, torch.device("cpu"))
    assert bare["image_mean_error"]["threshold"] is None and "sensitivity" not in bare["image_mean_error"]
    np.testing.assert_allclose(bare["image_mean_error"]["auroc"], 0.5)


class _MissesHalfTheLesion(torch.nn.Module):
    """Reconstruction = the input, except 0.5 lower on the left half of a 4 x 4 lesion (rows 2-5,
    columns 2-3): its squared error, 0.25, marks exactly those 8 pixels."""

    spatial_dims = 2

    def forward(self, x):
        out = x.clone()
        out[..., 2:6, 2:4] -= 0.5
        return out


def test_pixel_metrics_have_their_known_answers_in_the_evaluation_report():
    # One anomalous slice with a 4 x 4 mask (16 pixels); the map marks 8 of them, 0 elsewhere.
    # Pixel AUROC: P(lesion pixel > normal pixel) + 0.5 P(tie) = 0.5 + 0.5 * 0.5 = 0.75.
    # AUPRO (FPR <= 0.3): the curve (0, 0) -> (0, 0.5) -> (0.3, 0.65), area 0.3 * (0.5 + 0.65) / 2
    # = 0.1725, normalised by 0.3: 0.575.
    items = _items([0.5, 0.5], [0, 1])
    items[1]["mask"] = torch.zeros(1, 8, 8)
    items[1]["mask"][0, 2:6, 2:6] = 1
    items[1]["has_mask"] = True
    report = evaluate_items(_MissesHalfTheLesion(), {"sigma": 0.0, "reduction": "max"}, 0.1, items, torch.device("cpu"))
    assert report["pixel_region"] == "whole image"
    assert report["pixel_auroc"] == pytest.approx(0.75)
    assert report["pixel_pro"] == pytest.approx(0.575)
