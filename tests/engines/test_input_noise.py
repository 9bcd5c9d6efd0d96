"""Denoising training: coarse noise in, the clean image as the target."""

from __future__ import annotations

import pytest
import torch

from mama_monai.engines import AnomalyTrainer, DetailedForward
from mama_monai.engines.input_noise import CoarseNoise
from mama_monai.losses import ReconstructionLoss
from tests.engines.recorder import Recorder


def _neighbour_ratio(noise: torch.Tensor) -> float:
    """sd of differences between horizontally adjacent pixels over the sd of the noise: ~1.41 for
    white noise, small for noise smooth over many pixels."""
    return float((noise[..., 1:] - noise[..., :-1]).std() / noise.std())


def test_noise_is_coarse_and_scaled():
    torch.manual_seed(0)
    clean = torch.rand(16, 1, 64, 64)
    coarse = CoarseNoise(std=0.2, resolution=4)(clean) - clean
    fine = CoarseNoise(std=0.2, resolution=32)(clean) - clean
    assert _neighbour_ratio(coarse) < 0.2 < 0.3 < _neighbour_ratio(fine) < 1.0  # white noise would be ~1.41
    # the grid values are N(0, std^2) and bilinear interpolation only averages them: sd <= std
    assert 0.1 < float(coarse.std()) <= 0.2
    assert not torch.equal(coarse[0], coarse[1])  # each image gets its own draw


def test_noise_is_reproducible_and_off_at_zero():
    x = torch.rand(2, 1, 32, 32)
    torch.manual_seed(3)
    a = CoarseNoise(0.2, 8)(x)
    torch.manual_seed(3)
    assert torch.equal(a, CoarseNoise(0.2, 8)(x))
    state = torch.get_rng_state()
    assert CoarseNoise(0.0)(x) is x
    assert torch.equal(torch.get_rng_state(), state)  # off: draws nothing, runs stay as they were


@pytest.mark.parametrize(
    "section, message",
    [({"std": -0.1}, r"input_noise#std must be a finite number >= 0.*-0\.1"), ({"std": 0.1, "resolution": 1}, r"input_noise#resolution must be an int >= 2.*1"),
     ({"sd": 0.1}, r"training#input_noise must be null or a dict with std and resolution.*'sd'"), ("0.2", "training#input_noise must be null or a dict")],
)  # fmt: skip
def test_bad_settings_name_the_key(section, message):
    with pytest.raises(ValueError, match=message):
        CoarseNoise.from_config(section)


def test_trainer_feeds_the_noisy_image_and_scores_against_the_clean_one():
    torch.manual_seed(0)
    clean = torch.rand(4, 1, 32, 32)
    net = Recorder()
    loss = ReconstructionLoss(mse_weight=1.0, wasserstein_weight=0.0, memory_weight=0.0)
    trainer = AnomalyTrainer(
        device=torch.device("cpu"), max_epochs=1, epoch_length=1, train_data_loader=[{"image": clean}],
        network=DetailedForward(net), optimizer=torch.optim.SGD(net.parameters(), lr=0.0), loss_function=loss,
        decollate=False, input_noise=CoarseNoise(std=0.3, resolution=4),
    )  # fmt: skip
    trainer.run()
    assert not torch.allclose(net.seen[0], clean)  # the network saw the corrupted image
    assert torch.equal(trainer.state.output["image"], clean)
    # loss of the zero output against the CLEAN image (mean of clean^2), not against the noisy input
    assert float(trainer.state.output["mse"]) == pytest.approx(float(clean.pow(2).mean()), rel=1e-6)
