import numpy as np
import pytest
import torch
from scipy.stats import wasserstein_distance

from mama_monai.losses import ReconstructionLoss, WassersteinLoss, wasserstein_1d


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_scipy_on_random_data(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, 1, 9, 7)).astype(np.float32)
    y = rng.gamma(2.0, size=(3, 1, 9, 7)).astype(np.float32)
    got = wasserstein_1d(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    expected = [wasserstein_distance(x[i].ravel(), y[i].ravel()) for i in range(3)]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_is_invariant_to_pixel_permutation_but_not_to_intensity_shift():
    x = torch.rand(1, 1, 8, 8)
    perm = x.flatten()[torch.randperm(64)].reshape(1, 1, 8, 8)
    assert wasserstein_1d(x, perm).item() == pytest.approx(0.0, abs=1e-7)
    assert wasserstein_1d(x, x + 0.25).item() == pytest.approx(0.25, rel=1e-5)


def test_is_differentiable():
    x = torch.rand(2, 1, 4, 4, requires_grad=True)
    WassersteinLoss()(x, torch.zeros(2, 1, 4, 4)).backward()
    assert x.grad.abs().sum() > 0


def test_reductions():
    x, y = torch.zeros(2, 1, 4, 4), torch.cat([torch.ones(1, 1, 4, 4), 3 * torch.ones(1, 1, 4, 4)])
    assert WassersteinLoss("none")(x, y).tolist() == [1.0, 3.0]
    assert WassersteinLoss("sum")(x, y).item() == 4.0
    assert WassersteinLoss()(x, y).item() == 2.0


def test_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"same shape, got \[1, 4\] and \[1, 5\]"):
        wasserstein_1d(torch.zeros(1, 4), torch.zeros(1, 5))


def test_reconstruction_loss_weights_each_term():
    x, y = torch.zeros(2, 1, 4, 4), torch.full((2, 1, 4, 4), 0.5)
    memory = torch.tensor(2.0)
    terms = ReconstructionLoss(mse_weight=2.0, wasserstein_weight=3.0, memory_weight=0.1).components(x, y, memory)
    assert terms["mse"].item() == pytest.approx(0.25)
    assert terms["wasserstein"].item() == pytest.approx(0.5)
    assert terms["loss"].item() == pytest.approx(2 * 0.25 + 3 * 0.5 + 0.1 * 2.0)
    assert "wasserstein" not in ReconstructionLoss(wasserstein_weight=0).components(x, y)


@pytest.mark.parametrize("name", ["mse_weight", "wasserstein_weight", "memory_weight"])
def test_rejects_negative_weights(name):
    with pytest.raises(ValueError, match=f"{name} must be a number >= 0, got -1"):
        ReconstructionLoss(**{name: -1})
