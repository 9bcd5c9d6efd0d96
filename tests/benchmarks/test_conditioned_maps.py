"""benchmarks/conditioned_maps.py: maps divided by what held-out normals say to expect (known
answers on maps built by hand) and the reduction it shares with the product."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import conditioned_maps as cm  # noqa: E402


def _two_level_normals(n=4):
    """Normal slices whose condition is 0 (flat) on the left half and 1 (edge) on the right half,
    with map 0.1 on flat and 1.0 on edge pixels; every pixel is body."""
    condition = np.zeros((n, 8, 8))
    condition[:, :, 4:] = 1.0
    maps = np.where(condition > 0, 1.0, 0.1)
    return maps, condition, np.ones_like(maps, dtype=bool)


def test_binned_expectation_known_answer():
    maps, condition, body = _two_level_normals()
    table = cm.fit("intensity", maps, condition, body)
    floor = cm.FLOOR * 0.55  # the normals' mean map value in the body: (0.1 + 1.0) / 2
    spot, spot_cond = np.full((1, 8, 8), 0.1), np.zeros((1, 8, 8))
    spot[0, 2, 2] = 0.5  # a flat pixel erring 5x the normal flat error
    spot_cond[0, :, 4:] = 1.0
    spot[0, :, 4:] = 1.0  # edges err as normal ones do
    out = cm.apply("intensity", table, spot, spot_cond, np.ones_like(spot, dtype=bool))
    assert out[0, 2, 2] == pytest.approx(0.5 / (0.1 + floor))
    assert out[0, 0, 0] == pytest.approx(0.1 / (0.1 + floor))
    assert out[0, 0, 7] == pytest.approx(1.0 / (1.0 + floor))
    # the product's map ranks the normal edge (1.0) above the spot (0.5); the standardised map does not
    assert out[0, 2, 2] > out[0, 0, 7]


def test_position_z_score_known_answer():
    maps = np.stack([np.full((4, 4), v) for v in (1.0, 2.0, 3.0)])  # every pixel: mean 2, sd sqrt(2/3)
    maps[:, 0, 0] = 5.0  # one pixel errs the same in every normal: sd 0
    table = cm.fit("position", maps, None, np.ones_like(maps, dtype=bool))
    median_sd = np.sqrt(2 / 3)  # 15 of 16 pixels
    new = np.full((1, 4, 4), 4.0)
    out = cm.apply("position", table, new, None, np.ones_like(new, dtype=bool))
    assert out[0, 1, 1] == pytest.approx((4.0 - 2.0) / (np.sqrt(2 / 3) + median_sd))
    assert out[0, 0, 0] == pytest.approx((4.0 - 5.0) / median_sd)


def test_outside_the_body_is_zero_and_unknown_names_fail():
    maps, condition, body = _two_level_normals()
    table = cm.fit("gradient", maps, condition, body)
    outside = np.zeros_like(body)
    assert not cm.apply("gradient", table, maps, condition, outside).any()
    with pytest.raises(ValueError, match="unknown candidate 'edges'"):
        cm.fit("edges", maps, condition, body)
    with pytest.raises(ValueError, match="no foreground"):
        cm.fit("gradient", maps, condition, outside)


def test_validation_is_cross_fitted_by_source_slice():
    """Items made from source A (and A itself) are standardised by B's table only, and B's by A's."""
    rng = np.random.default_rng(0)
    maps = rng.uniform(0.01, 0.02, (4, 1, 8, 8))
    maps[0] *= 50  # source A errs far more than B: a table fitted with A in it would hide A's error
    images = rng.uniform(0.0, 1.0, (4, 1, 8, 8))
    out = {"map": maps, "image": images, "label": np.array([0, 0, 1, 1])}
    ids = ["ctA_s001", "ctB_s002", "ctA_s001_simulated_0", "ctB_s002_simulated_0"]
    body = np.ones((4, 8, 8), dtype=bool)
    got = cm.validation_maps("intensity", out, body, ids)
    table_b = cm.fit("intensity", maps[1:2, 0], images[1:2, 0], body[1:2])
    table_a = cm.fit("intensity", maps[0:1, 0], images[0:1, 0], body[0:1])
    np.testing.assert_allclose(got[[0, 2]], cm.apply("intensity", table_b, maps[[0, 2], 0], images[[0, 2], 0], body[[0, 2]]))
    np.testing.assert_allclose(got[[1, 3]], cm.apply("intensity", table_a, maps[[1, 3], 0], images[[1, 3], 0], body[[1, 3]]))
    with pytest.raises(ValueError, match="no clean source slice"):
        cm.validation_maps("intensity", out, body, ["ctA_s001", "ctB_s002", "ctC_s009_simulated_0", "ctB_s002_simulated_0"])


def test_slice_scores_are_the_products_reduction():
    """The reduction every candidate shares is the product's own (AnomalyMap.score), on a real-sized map."""
    from mama_monai.engines import AnomalyMap

    amap = AnomalyMap(2, sigma=2.0, reduction="percentile", percentile=99.0, foreground_threshold=0.02, border=2)
    rng = np.random.default_rng(1)
    image = torch.zeros(3, 1, 64, 64)
    image[:, :, 10:54, 8:56] = torch.as_tensor(rng.uniform(0.1, 1.0, (3, 1, 44, 48)), dtype=torch.float32)
    amap_values = amap.map(image, image + torch.as_tensor(rng.normal(0, 0.1, (3, 1, 64, 64)), dtype=torch.float32))
    body = amap.foreground(image).numpy()[:, 0] > 0
    np.testing.assert_allclose(cm.slice_scores(amap_values.numpy()[:, 0], body), amap.score(amap_values).numpy(), rtol=1e-5)


def test_gradient_magnitude_of_a_ramp_and_a_step():
    """A ramp of slope 0.1 per pixel: 0.1 away from the borders. A unit step: the derivative of a
    Gaussian of sigma 1 px half a pixel from its centre, exp(-1/8) / sqrt(2 pi) = 0.352 (the
    discrete kernel gives 0.364; sigma 2 px would give 0.195)."""
    ramp = np.tile(np.arange(32) * 0.1, (32, 1))[None]
    assert cm.gradient_magnitude(ramp)[0, 8:24, 8:24] == pytest.approx(0.1, rel=1e-3)
    step = np.zeros((1, 32, 32))
    step[0, :, 16:] = 1.0
    assert cm.gradient_magnitude(step)[0, 16, 15:17] == pytest.approx(np.exp(-1 / 8) / np.sqrt(2 * np.pi), rel=0.05)
