"""``training#lr_schedule``: the learning rate the optimiser really used, checked against the closed
form of cosine annealing, and a resumed cosine run continuing the schedule where it stopped."""

from __future__ import annotations

import math
import shutil

import pytest
import torch

from mama_monai.cli import main
from mama_monai.workflows.training import lr_scheduler
from tests.workflows.test_resume_exact import _assert_same_tree


def _lr(checkpoint) -> float:
    return float(torch.load(checkpoint, weights_only=True)["optimizer"]["param_groups"][0]["lr"])


@pytest.fixture(scope="module")
def cosine_run(tmp_path_factory, tiny):
    """The tiny autoencoder trained 20 iterations with ``lr_schedule: cosine`` (checkpoints at 10 and 20)."""
    run = tmp_path_factory.mktemp("cosine") / "run"
    argv = ["train", "--network", "autoencoder", "--device", "cpu", *tiny.args, "--training#lr_schedule", "cosine"]
    assert main([*argv, "--output", str(run)]) == 0
    return run, argv


def test_cosine_anneals_the_optimizer_lr_to_zero_over_the_iterations(cosine_run):
    run, _ = cosine_run
    lr0 = 0.002  # configs/network/autoencoder.yaml: twice train.yaml's optimizer#lr
    # closed form of cosine annealing after t of T = 20 steps: lr0 (1 + cos(pi t / T)) / 2
    assert _lr(run / "checkpoints" / "last_checkpoint_epoch=1.pt") == pytest.approx(lr0 * (1 + math.cos(math.pi * 10 / 20)) / 2, rel=1e-9)
    assert _lr(run / "checkpoints" / "last_checkpoint_epoch=2.pt") == pytest.approx(0.0, abs=1e-15)
    assert torch.load(run / "model.pt", weights_only=True)["config"]["training"]["lr_schedule"] == "cosine"


def test_the_default_keeps_the_learning_rate_constant(tmp_path, tiny):
    run = tmp_path / "run"
    assert main(["train", "--network", "autoencoder", "--device", "cpu", *tiny.args, "--output", str(run)]) == 0
    assert _lr(run / "checkpoints" / "last_checkpoint_epoch=2.pt") == 0.002  # configs/network/autoencoder.yaml
    assert "lr_scheduler" not in torch.load(run / "checkpoints" / "last_checkpoint_epoch=2.pt", weights_only=True)


def test_a_resumed_cosine_run_continues_the_schedule(cosine_run, tmp_path):
    run, argv = cosine_run
    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copy2(run / "checkpoints" / "last_checkpoint_epoch=1.pt", resumed / "checkpoints")
    assert main([*argv, "--output", str(resumed), "--resume"]) == 0
    final = "last_checkpoint_epoch=2.pt"
    ref = torch.load(run / "checkpoints" / final, weights_only=True)
    got = torch.load(resumed / "checkpoints" / final, weights_only=True)
    assert got["lr_scheduler"] == ref["lr_scheduler"]
    _assert_same_tree(ref["network"], got["network"], "network")  # a schedule restarted at lr0 would give other weights
    _assert_same_tree(ref["optimizer"], got["optimizer"], "optimizer")


def test_an_unknown_schedule_is_refused_by_name():
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match=r"training#lr_schedule must be one of \['constant', 'cosine'\], got 'step'"):
        lr_scheduler(optimizer, {"lr_schedule": "step"}, 10)
