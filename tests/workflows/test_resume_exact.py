"""A resumed run continues exactly where the interrupted one stopped: same weights, optimizer
state, loader order and next-step loss as a run that was never interrupted."""

from __future__ import annotations

import shutil

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mama_monai.cli import main


def _losses(run) -> dict[int, float]:
    """Per-iteration training losses from the run's TensorBoard log (MONAI's TensorBoardStatsHandler)."""
    losses: dict[int, float] = {}
    for folder in sorted({p.parent for p in run.rglob("events.out.tfevents.*")}):
        acc = EventAccumulator(str(folder))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            if tag.lower() == "loss":
                losses.update({e.step: e.value for e in acc.Scalars(tag)})
    return losses


def _assert_same_tree(a, b, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{where}: tensors differ (max |diff| {(a.float() - b.float()).abs().max():.3g})"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            _assert_same_tree(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_tree(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("augment", [[], ["--training#augment", "{rotate_deg: 10, scale: 0.1, translate: 0.05}"]], ids=["plain", "augmented"])
def test_resume_from_the_first_checkpoint_reproduces_the_uninterrupted_run(tmp_path, tiny, augment):
    # MAMA Net: the hash memory draws its first slots from a batch and restarts unread ones, the
    # loader shuffles, so any random state not restored shows in the weights; augmented: every
    # batch's random affine transforms too (engines/augmentation.py draws them from torch's generator)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    argv = ["train", "--network", "mamanet_compact", "--device", "cpu", *tiny.args, *tiny.mamanet, *augment]
    assert main([*argv, "--output", str(whole)]) == 0  # 20 iterations, a checkpoint every 10

    # the interrupted run: the same run as it stood after its first checkpoint
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copy2(whole / "checkpoints" / "last_checkpoint_epoch=1.pt", resumed / "checkpoints")
    assert main([*argv, "--output", str(resumed), "--resume"]) == 0

    final = "last_checkpoint_epoch=2.pt"
    ref = torch.load(whole / "checkpoints" / final, weights_only=True)
    got = torch.load(resumed / "checkpoints" / final, weights_only=True)
    # the first step after the resume (iteration 11) and every later one had the same loss
    ref_losses, got_losses = _losses(whole), _losses(resumed)
    assert set(range(1, 21)) <= ref_losses.keys() and set(range(11, 21)) <= got_losses.keys()
    assert [got_losses[i] for i in range(11, 21)] == [ref_losses[i] for i in range(11, 21)]
    assert ref["trainer"]["iteration"] == got["trainer"]["iteration"] == 20
    _assert_same_tree(ref["network"], got["network"], "network")
    _assert_same_tree(ref["optimizer"], got["optimizer"], "optimizer")
    _assert_same_tree(ref["progress"], got["progress"], "progress")
    _assert_same_tree(
        torch.load(whole / "model.pt", weights_only=True)["state_dict"],
        torch.load(resumed / "model.pt", weights_only=True)["state_dict"],
        "model.pt",
    )


def test_a_checkpoint_without_random_state_resumes_with_a_warning(tmp_path, tiny, caplog):
    import logging

    run = tmp_path / "run"
    argv = ["train", "--network", "autoencoder", "--device", "cpu", "--output", str(run), *tiny.args]
    assert main(argv) == 0
    (run / "model.pt").unlink()
    (run / "checkpoints" / "last_checkpoint_epoch=2.pt").unlink()
    first = run / "checkpoints" / "last_checkpoint_epoch=1.pt"
    old = torch.load(first, weights_only=True)
    for key in ("rng", "sampler"):
        del old[key]  # as an older version wrote it
    torch.save(old, first)
    caplog.set_level(logging.WARNING)
    assert main([*argv, "--resume"]) == 0
    assert f"checkpoint {first} holds no rng or sampler (an older version wrote it)" in caplog.text
    assert torch.load(run / "model.pt", weights_only=True)["metrics"]["iterations"] == 20
