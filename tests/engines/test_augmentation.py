"""Random affine augmentation of training batches: the geometry asked for, and nothing else."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from mama_monai.engines import AnomalyTrainer, DetailedForward
from mama_monai.engines.augmentation import RandomAffineBatch
from mama_monai.losses import ReconstructionLoss
from tests.engines.recorder import Recorder


def _principal_angle(image: np.ndarray) -> float:
    """Angle in degrees of the long axis of a bright shape, from its intensity-weighted second
    moments (0 = along rows)."""
    ys, xs = np.mgrid[: image.shape[0], : image.shape[1]]
    cov = np.cov(np.stack([xs.ravel(), ys.ravel()]).astype(float), aweights=image.ravel())
    angle = 0.5 * math.degrees(math.atan2(2 * cov[0, 1], cov[0, 0] - cov[1, 1]))
    return (angle + 90) % 180 - 90


def _bar(batch: int, size: int = 64) -> torch.Tensor:
    image = torch.zeros(batch, 1, size, size)
    image[..., size // 2 - 2 : size // 2 + 2, 12 : size - 12] = 1.0  # a horizontal bar through the centre
    return image


def test_rotation_turns_each_image_by_its_own_angle_within_the_range():
    torch.manual_seed(0)
    bars = _bar(48)
    assert abs(_principal_angle(bars[0, 0].numpy())) < 0.01
    turned = RandomAffineBatch(rotate_deg=10)(bars)
    angles = np.array([_principal_angle(img[0].numpy()) for img in turned])
    # measured independently of the transform, on the image: the bar's long axis turned by at most
    # 10 degrees (measurement error ~0.5), and the draws fill the range rather than sit near 0
    assert np.abs(angles).max() <= 10.5
    assert np.abs(angles).max() >= 7.0 and (angles > 3).any() and (angles < -3).any()
    assert len(np.unique(np.round(angles, 3))) == len(angles)  # every image its own draw


def _blob(size: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return np.exp(-(((yy - 30.0) ** 2) + (xx - 34.0) ** 2) / (2 * 4.0**2)).astype(np.float32)


def test_translation_alone_is_a_pure_shift_within_the_fraction():
    torch.manual_seed(1)
    blob = _blob()
    shifted = RandomAffineBatch(translate=0.1)(torch.from_numpy(blob)[None, None].repeat(16, 1, 1, 1))
    centre = np.array(ndimage.center_of_mass(blob))
    moves = []
    for image in shifted[:, 0].numpy():
        move = np.array(ndimage.center_of_mass(image)) - centre
        moves.append(move)
        # an independent reference: scipy shifting the blob by the measured move gives the same image
        np.testing.assert_allclose(image, ndimage.shift(blob, move, order=1), atol=0.02)
    moves = np.abs(np.array(moves))
    assert moves.max() <= 6.4 + 0.05  # 10 % of 64 pixels
    assert moves.max() >= 3.0


def test_scaling_alone_scales_the_blob_within_the_range():
    torch.manual_seed(2)
    blob = _blob()
    scaled = RandomAffineBatch(scale=0.2)(torch.from_numpy(blob)[None, None].repeat(16, 1, 1, 1))
    ratios = np.array([image.sum() / blob.sum() for image in scaled[:, 0].numpy()])
    # MONAI scales the sampling grid by 1 + u, u in [-0.2, 0.2] per axis, so the image is zoomed by
    # 1 / (1 + u) and the blob's mass by 1 / ((1 + u_x)(1 + u_y)); draws that zoom in and out appear
    assert ((ratios > 1 / 1.2**2 - 0.01) & (ratios < 1 / 0.8**2 + 0.01)).all()
    assert (ratios < 0.9).any() and (ratios > 1.1).any()


def test_volumes_are_augmented_too():
    torch.manual_seed(3)
    volume = torch.zeros(2, 1, 16, 16, 16)
    volume[:, :, 4:12, 6:10, 6:10] = 1.0
    out = RandomAffineBatch(rotate_deg=20)(volume)
    assert out.shape == volume.shape and not torch.equal(out[0], volume[0]) and not torch.equal(out[0], out[1])


def test_off_returns_the_batch_and_draws_nothing_and_on_is_reproducible():
    x = torch.rand(3, 1, 32, 32)
    state = torch.get_rng_state()
    for off in (RandomAffineBatch.from_config(None), RandomAffineBatch(rotate_deg=10, prob=0.0)):
        assert off(x) is x
    assert torch.equal(torch.get_rng_state(), state)
    aug = RandomAffineBatch(rotate_deg=10, scale=0.1, translate=0.05)
    torch.manual_seed(4)
    a = aug(x)
    torch.manual_seed(4)
    assert torch.equal(a, aug(x))
    assert not torch.equal(a, aug(x))  # the next batch gets new draws


@pytest.mark.parametrize(
    "section, message",
    [({"rotate_deg": -1}, r"training#augment#rotate_deg must be a number in \[0.0, 180.0\], got -1"),
     ({"scale": 1.5}, r"training#augment#scale must be a number in \[0.0, 0.9\], got 1.5"),
     ({"translate": "0.1"}, r"training#augment#translate must be a number .* got '0.1'"),
     ({"rotate": 10}, r"training#augment must be null or a dict with keys among .*'rotate'"),
     ([10], r"training#augment must be null or a dict")],
)  # fmt: skip
def test_bad_settings_name_the_key_and_the_value(section, message):
    with pytest.raises(ValueError, match=message):
        RandomAffineBatch.from_config(section)


def test_the_trainer_uses_the_augmented_image_as_input_and_target():
    clean = _bar(4, 32)
    net = Recorder()
    loss = ReconstructionLoss(mse_weight=1.0, wasserstein_weight=0.0, memory_weight=0.0)
    aug = RandomAffineBatch(rotate_deg=30, translate=0.1)
    trainer = AnomalyTrainer(
        device=torch.device("cpu"), max_epochs=1, epoch_length=1, train_data_loader=[{"image": clean}],
        network=DetailedForward(net), optimizer=torch.optim.SGD(net.parameters(), lr=0.0), loss_function=loss,
        decollate=False, augment=aug,
    )  # fmt: skip
    torch.manual_seed(5)
    trainer.run()
    torch.manual_seed(5)
    expected = aug(clean)
    assert not torch.equal(expected, clean)
    assert torch.equal(net.seen[0], expected)  # the network saw the augmented batch ...
    assert torch.equal(trainer.state.output["image"], expected)  # ... and it is the target:
    assert float(trainer.state.output["mse"]) == pytest.approx(float(expected.pow(2).mean()), rel=1e-6)
