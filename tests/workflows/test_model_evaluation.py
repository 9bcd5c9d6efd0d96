"""Honest ``evaluate`` reports, on the real demo CT (LIDC-IDRI-0001).

The manifest is the demo's, with what a real data folder holds by accident: every training file
missing or truncated (``evaluate`` needs only the test split), one truncated test file with two
cases, and one test row whose slice index is out of range. ``report.json`` must list each failed
case (case, file, reason) and count it in ``n_cases``; the other rows of the same file still count.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from pathlib import Path

import pytest

from mama_monai.cli import main
from mama_monai.data.demo import demo_manifest, load_demo_ct
from mama_monai.data.manifest import Manifest, ManifestCase, write_manifest
from mama_monai.workflows.bundle import BundleEvaluator
from mama_monai.workflows.config import configs_dir, load_config
from tests.model_files import tiny_model_file

N_DEMO_TEST = 39  # the demo's test split: 11 nodule slices + 28 matched normal slices
BROKEN_TEST = ("truncated_1", "truncated_2")
BAD_ROW = "ct_slice_999"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A tiny (untrained) ConvAutoEncoder model file for ct_lung at 32 x 32."""
    return tiny_model_file(tmp_path_factory.mktemp("model") / "model.pt", 0.01)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """The demo manifest in a folder where no training file can be read, plus three bad test rows."""
    root = tmp_path_factory.mktemp("data")
    demo = load_demo_ct()
    (root / "ct.nii.gz").symlink_to(demo["image"])
    (root / "nodule_mask.nii.gz").symlink_to(demo["mask"])
    data = demo["image"].read_bytes()
    for name in ("train_truncated.nii.gz", "test_truncated.nii.gz"):  # an interrupted copy
        (root / name).write_bytes(data[: len(data) // 3])
    cases = []
    for i, case in enumerate(demo_manifest("lidc").cases):
        if case.split == "train":  # half missing, half truncated
            case = dataclasses.replace(case, image="train_missing.nii.gz" if i % 2 else "train_truncated.nii.gz")
        cases.append(case)
    cases += [ManifestCase(name, "test_truncated.nii.gz", 0, split="test", slice_index=40) for name in BROKEN_TEST]
    cases.insert(len(cases) // 2, ManifestCase(BAD_ROW, "ct.nii.gz", 0, split="test", slice_index=999))
    return write_manifest(Manifest("lidc_damaged", root, cases), root / "manifest.json", check_files=False)


@pytest.fixture(scope="module")
def cli_run(model, manifest, tmp_path_factory) -> tuple[int, str, dict]:
    """``mama-monai evaluate`` on the damaged manifest: (exit code, stdout, report.json)."""
    out = tmp_path_factory.mktemp("eval") / "eval"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["evaluate", "--model", str(model), "--output", str(out), "--device", "cpu", "--data#manifest", str(manifest)])
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").is_file() else {}
    return code, stdout.getvalue(), report


def test_evaluate_runs_although_no_training_file_can_be_read(cli_run):
    code, _, report = cli_run
    assert report, "evaluate refused to run"
    assert report["n_scored"] == N_DEMO_TEST  # every readable test case, training files never opened
    assert {f["case"] for f in report["failures"]}.isdisjoint(c.case_id for c in demo_manifest("lidc").cases)


def test_report_lists_every_failed_test_case_and_counts_it(cli_run, manifest):
    code, stdout, report = cli_run
    failed = {f["case"]: f for f in report["failures"]}
    assert sorted(failed) == sorted([*BROKEN_TEST, BAD_ROW])
    for name in BROKEN_TEST:
        assert failed[name]["file"] == str(manifest.parent / "test_truncated.nii.gz")
        assert failed[name]["reason"].startswith("ImageLoadError: ")
    assert failed[BAD_ROW]["file"] == str((manifest.parent / "ct.nii.gz").resolve())
    assert "slice_index must be in 0.." in failed[BAD_ROW]["reason"] and "999" in failed[BAD_ROW]["reason"]
    assert report["n_failed"] == 3 and report["n_cases"] == N_DEMO_TEST + 3
    assert len(report["cases"]) == report["n_scored"]
    assert code == 1 and f"{N_DEMO_TEST} of {N_DEMO_TEST + 3} test cases scored (3 could not be loaded" in stdout


def test_a_bad_row_fails_alone_the_other_rows_of_its_file_are_scored(cli_run):
    _, _, report = cli_run
    scored = {c["case_id"] for c in report["cases"]}
    demo_test = {c.case_id for c in demo_manifest("lidc").cases if c.split == "test"}
    assert scored == demo_test  # every row of ct.nii.gz, before and after the bad one


def test_bundle_evaluator_writes_the_same_honest_report(model, manifest, cli_run, tmp_path):
    parser = load_config(configs_dir() / "train.yaml", {"data#manifest": str(manifest)})
    report = BundleEvaluator(model, tmp_path / "eval", device="cpu").run(parser)
    written = json.loads((tmp_path / "eval" / "report.json").read_text())
    for key in ("n_cases", "n_scored", "n_failed", "failures"):
        assert report[key] == written[key] == cli_run[2][key], key


def test_evaluate_with_no_readable_test_case_says_so(model, tmp_path, capsys):
    root = tmp_path / "data"
    root.mkdir()
    (root / "ct.nii.gz").write_bytes(load_demo_ct()["image"].read_bytes()[:5000])
    cases = [ManifestCase("a", "ct.nii.gz", 0, split="train", slice_index=1), ManifestCase("b", "ct.nii.gz", 1, split="test", slice_index=2)]
    path = write_manifest(Manifest("broken", root, cases), root / "manifest.json", check_files=False)
    argv = ["evaluate", "--model", str(model), "--output", str(tmp_path / "eval"), "--device", "cpu", "--data#manifest", str(path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "none of the 1 test case(s)" in err and "b: ImageLoadError" in err
    assert not (tmp_path / "eval" / "report.json").exists()


def test_evaluate_defaults_to_the_manifest_and_fold_the_model_was_trained_with(tmp_path):
    from mama_monai.engines.model_spec import TrainingSplit
    from mama_monai.workflows.model_evaluation import training_split_overrides

    manifest = tmp_path / "manifest.json"
    manifest.write_text("{}")
    assert training_split_overrides(TrainingSplit(str(manifest), 2)) == {"data#manifest": str(manifest), "data#fold": 2}
    assert training_split_overrides(TrainingSplit(None, None)) == {"data#manifest": None, "data#fold": None}  # the embedded demo


@pytest.mark.parametrize(
    "trained_on, message",
    [
        (("/nowhere/brain_mri.json", None), r"was trained with manifest '/nowhere/brain_mri.json', which does not exist here; pass --data#manifest"),
        (None, r"does not record the manifest it was trained with"),
        (("$__import__('os')", None), r"not a plain path"),
        ((None, "1"), r"training fold that is not an int"),
    ],
)
def test_evaluate_refuses_to_guess_the_test_split(trained_on, message):
    from mama_monai.engines.model_spec import TrainingSplit
    from mama_monai.workflows.model_evaluation import training_split_overrides

    with pytest.raises(ValueError, match=message):
        training_split_overrides(None if trained_on is None else TrainingSplit(*trained_on), "model.pt")


def test_a_model_file_without_a_recorded_manifest_has_no_training_split(tmp_path):
    from mama_monai.engines.model_spec import load_model_spec

    model = tiny_model_file(tmp_path / "model.pt", 0.01)  # preprocessing without 'manifest'
    assert load_model_spec(model)[1].trained_on is None


def test_cli_evaluate_uses_the_training_manifest_and_records_it(manifest, tmp_path, capsys):
    """The first release evaluated any model without --data#manifest on the embedded CT demo."""
    model = tiny_model_file(tmp_path / "model.pt", 0.01, manifest=str(manifest), fold=None)
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(model), "--output", str(out), "--device", "cpu"]) == 1  # the damaged rows fail
    report = json.loads((out / "report.json").read_text())
    assert report["test_split"]["manifest"] == str(manifest) == report["test_split"]["trained_with"]
    assert report["n_cases"] == N_DEMO_TEST + len(BROKEN_TEST) + 1
    tiny_model_file(tmp_path / "moved.pt", 0.01, manifest=str(tmp_path / "gone.json"), fold=None)
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "moved.pt"), "--output", str(tmp_path / "eval2"), "--device", "cpu"]) == 2
    assert "gone.json', which does not exist here; pass --data#manifest" in capsys.readouterr().err
