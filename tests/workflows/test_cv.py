"""``mama-monai cv``: 3-fold stratified cross-validation of two networks on a manifest cut from the real demo CT."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from scipy.stats import ttest_rel

from mama_monai.cli import main
from mama_monai.data import assign_folds, write_manifest
from mama_monai.data.demo import demo_manifest
from mama_monai.data.manifest import Manifest
from mama_monai.engines import read_checkpoint

NETWORKS = ["autoencoder", "memae"]
METRICS = ("auroc", "average_precision", "sensitivity", "specificity", "f1", "pixel_auroc")


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory, tiny):
    """30 real slices (9 with a nodule outline, 21 normal) in 3 label-stratified folds, then ``mama-monai cv``."""
    root = tmp_path_factory.mktemp("cv")
    demo = demo_manifest("lidc")
    anomalous = [c for c in demo.cases if c.label == 1][:9]
    normal = [c for c in demo.cases if c.label == 0 and c.split == "test"][:21]
    cases = anomalous + normal
    folds = assign_folds([c.label for c in cases], num_folds=3, seed=0)
    manifest = Manifest(
        "lidc0001_cv_tiny",
        demo.root,
        [dataclasses.replace(c, fold=f, split=None) for c, f in zip(cases, folds)],
        num_folds=3,
    )
    path = write_manifest(manifest, root / "manifest.json")
    out = root / "out"
    argv = [
        "cv",
        "--network",
        *NETWORKS,
        "--folds",
        "3",
        "--output",
        str(out),
        "--device",
        "cpu",
        "--data#manifest",
        str(path),
    ]
    assert main([*argv, *tiny.args]) == 0
    return out, manifest


def test_every_fold_is_tested_on_its_own_stratified_cases(cv_run):
    _, manifest = cv_run
    for fold in range(3):
        labels = [c.label for c in manifest.cases if c.fold == fold]
        assert len(labels) == 10 and sum(labels) == 3  # 9 anomalous / 3 folds, stratified


def test_report_has_per_fold_metrics_and_mean_std(cv_run):
    out, _ = cv_run
    report = json.loads((out / "cv_report.json").read_text())
    assert report["folds"] == 3 and list(report["networks"]) == NETWORKS
    for network in NETWORKS:
        result = report["networks"][network]
        assert len(result["folds"]) == 3
        for fold in result["folds"]:
            for key in METRICS:
                assert 0.0 <= fold[key] <= 1.0, (network, key)
        for key in METRICS:
            values = [fold[key] for fold in result["folds"]]
            mean, std = result["mean_std"][key]
            assert mean == pytest.approx(np.mean(values)) and std == pytest.approx(np.std(values, ddof=1))
        for fold in range(3):
            payload = read_checkpoint(out / network / f"fold_{fold}" / "model.pt")
            assert payload["metrics"]["iterations"] == 20 and payload["config"]["preprocessing"]["spatial_size"] == [
                32,
                32,
            ]


def test_paired_t_test_compares_the_second_network_with_the_first(cv_run):
    out, _ = cv_run
    report = json.loads((out / "cv_report.json").read_text())
    assert list(report["paired_t_test_auroc"]) == ["memae"]
    test = report["paired_t_test_auroc"]["memae"]
    a, b = ([f["auroc"] for f in report["networks"][n]["folds"]] for n in ("memae", "autoencoder"))
    expected = ttest_rel(a, b)
    assert test["n"] == 3 and test["alpha"] == 0.05
    assert test["mean_difference"] == pytest.approx(np.mean(np.subtract(a, b)))
    if math.isfinite(expected.statistic):
        assert test["t"] == pytest.approx(expected.statistic) and test["p"] == pytest.approx(expected.pvalue)
        assert test["significant"] == (expected.pvalue < 0.05)
    else:  # identical differences in every fold: t undefined, written as null in strict JSON
        assert test["t"] is None or not math.isfinite(test["t"])
