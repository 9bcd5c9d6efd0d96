"""``mama-monai``: every subcommand's --help, and the input errors: exit code 2 and one line naming the problem."""

from __future__ import annotations

import numpy as np
import pytest

from mama_monai.cli import _COMMANDS, main
from tests.data.conftest import write_series
from tests.model_files import tiny_model_file

KEY_OPTIONS = {
    "demo": ["--output", "--device", "--overwrite", "--KEY VALUE"],
    "train": ["--network", "--config", "--output", "--resume", "--device", "torchrun", "--overwrite", "--KEY VALUE"],
    "evaluate": ["--model", "--config", "--output", "--device", "--overwrite", "--KEY VALUE"],
    "cv": ["--network", "--folds", "--config", "--output", "--device", "paired", "--overwrite", "--KEY VALUE"],
    "score": [
        "--model",
        "--input",
        "--output",
        "--device",
        "--force",
        "--overwrite",
        "anomaly_map.nii.gz",
        "scores.csv",
    ],
    "convert": ["input", "output", "--preset", "--series-uid", "--spatial-size", "--grid", "--overwrite"],
    "manifest": ["download_dir", "output", "--overwrite"],
}


def _error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"mama-monai {command}: error: "), err
    return err


def test_the_documented_subcommands_are_registered():
    assert set(KEY_OPTIONS) <= set(_COMMANDS)


@pytest.mark.parametrize("command", sorted(_COMMANDS))
def test_help_of_every_subcommand_exits_0_and_explains_its_options(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert text.startswith(f"usage: mama-monai {command}")
    for option in KEY_OPTIONS.get(command, []):
        assert option in text, option


@pytest.mark.parametrize("command", ["train", "cv", "demo"])
def test_unknown_override_key_is_named_in_one_line(command, tmp_path, capsys):
    argv = [command, "--output", str(tmp_path / "out"), "--device", "cpu", "--trainig#iterations", "20"]
    if command == "cv":
        argv += ["--network", "autoencoder"]
    assert main(argv) == 2
    err = _error_line(capsys, command)
    assert "--trainig#iterations" in err and "no such key" in err and "'training'" in err  # lists the real keys
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "extra",
    [["--training#iterations"], ["--training#iterations", "20", "--seed"], ["--training#iterations", "20", "30"]],
)
def test_malformed_overrides_exit_2(extra, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--output", str(tmp_path / "out"), *extra])
    assert exit_info.value.code == 2
    assert "'--key value' pairs" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unknown_network_is_named_with_the_choices(tmp_path, capsys):
    assert main(["train", "--network", "mamanet_huge", "--output", str(tmp_path / "out"), "--device", "cpu"]) == 2
    err = _error_line(capsys, "train")
    assert "'mamanet_huge'" in err and "mamanet_compact" in err and "memae" in err


def test_iterations_not_a_multiple_of_val_interval_is_refused(tmp_path, tiny, capsys):
    out = tmp_path / "out"
    argv = ["train", "--network", "autoencoder", "--output", str(out), "--device", "cpu", *tiny.args]
    assert main([*argv, "--training#iterations", "15"]) == 2
    err = _error_line(capsys, "train")
    assert "training#iterations (15) must be a positive multiple of training#val_interval (10)" in err
    assert not (out / "model.pt").exists()


def test_cv_on_the_demo_manifest_without_folds_is_refused(tmp_path, tiny, capsys):
    argv = ["cv", "--network", "autoencoder", "--folds", "3", "--output", str(tmp_path / "cv"), "--device", "cpu"]
    assert main([*argv, *tiny.args]) == 2
    err = _error_line(capsys, "cv")
    assert "manifest with folds" in err and "--data#manifest" in err
    assert main([*argv[:4], "1", *argv[5:], *tiny.args]) == 2
    assert "folds must be >= 2 for cross-validation, got 1" in _error_line(capsys, "cv")


@pytest.fixture
def ct_model(tmp_path):
    return tiny_model_file(tmp_path / "ct_model.pt", 0.1)


def test_score_refuses_an_mr_series_for_a_ct_model_unless_forced(ct_model, tmp_path, capsys):
    rows, cols = np.meshgrid(np.arange(20), np.arange(24), indexing="ij")
    write_series(
        tmp_path / "brain_mr",
        np.stack([(rows * 20 + cols * 7 + 50 * k).astype(np.int16) for k in range(3)]),
        Modality="MR",
    )
    argv = ["score", "--model", str(ct_model), "--input", str(tmp_path / "brain_mr")]
    assert main([*argv, "--output", str(tmp_path / "refused")]) == 2
    err = _error_line(capsys, "score")
    assert "CT" in err and "MR" in err and "--force" in err
    assert not (tmp_path / "refused").exists()
    assert main([*argv, "--output", str(tmp_path / "forced"), "--force"]) == 0
    assert (tmp_path / "forced" / "case_001" / "anomaly_map.nii.gz").is_file()


def test_evaluate_with_a_corrupted_model_names_the_file(ct_model, tmp_path, capsys):
    bad = tmp_path / "broken_model.pt"
    bad.write_bytes(ct_model.read_bytes()[:1000])
    assert main(["evaluate", "--model", str(bad), "--output", str(tmp_path / "eval"), "--device", "cpu"]) == 2
    err = _error_line(capsys, "evaluate")
    assert repr(str(bad)) in err and "cannot be read" in err
    assert not (tmp_path / "eval").exists()


def test_misspelt_nested_override_is_refused_naming_the_real_keys(tmp_path, capsys):
    code = main(["train", "--output", str(tmp_path / "out"), "--device", "cpu", "--training#iteratons", "20"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--training#iteratons" in err and "'iterations'" in err


def test_train_prints_what_validation_said_of_the_network_it_kept(tmp_path, tiny, capsys):
    """The printed held-out normal error is the kept network's: the model file's network,
    reconstructing the validation normals again, gives the same number; the AUROC is that
    validation's row in the model file's history."""
    import re

    import torch

    from mama_monai.engines import AnomalyMap, score_items
    from mama_monai.engines.checkpoint import load_model
    from mama_monai.workflows.config import workflow_config
    from mama_monai.workflows.splits import prepare_splits
    from mama_monai.workflows.training import normal_mse

    out = tmp_path / "run"
    args = [*tiny.args, "--training#iterations", "30"]
    assert main(["train", "--network", "autoencoder", "--output", str(out), "--device", "cpu", *args]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    found = re.fullmatch(r"validation of the network kept \(iteration (\d+)\): held-out normal error (\S+), AUROC (\S+) on SIMULATED lesions", line)
    assert found, line
    network, payload = load_model(out / "model.pt")
    parser = workflow_config("autoencoder", overrides=dict(tiny.overrides, **{"training#iterations": 30}))
    val = prepare_splits(parser)["val"]
    with torch.no_grad():
        again = normal_mse(score_items(network, AnomalyMap(2), val, torch.device("cpu")))
    assert float(found.group(2)) == pytest.approx(again, rel=1e-3)
    row = next(r for r in payload["metrics"]["history"] if r["iteration"] == int(found.group(1)))
    assert float(found.group(3)) == pytest.approx(row["val_auroc"], abs=5e-4)
    assert row["val_normal_mse"] == min(r["val_normal_mse"] for r in payload["metrics"]["history"])
