"""Pixel AUROC (with a region mask) and the per-region overlap score."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mama_monai.evaluation import pixel_auroc, pro_score
from mama_monai.evaluation import pixel as pixel_module


def _stack(seed=0, n=3, size=16):
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), dtype=np.uint8)
    masks[0, 3:6, 3:6] = 1
    masks[1, 10:14, 8:12] = 1
    maps = rng.random((n, size, size)) + 0.8 * masks
    return maps, masks


def test_pixel_auroc_pools_all_pixels_like_sklearn():
    maps, masks = _stack()
    assert pixel_auroc(maps, masks) == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()))


def test_pixel_auroc_ignores_pixels_outside_the_region():
    maps, masks = _stack()
    region = np.zeros_like(masks)
    region[:, :, :8] = 1  # keeps the first lesion whole and half of the second
    maps_outside_hot = maps.copy()
    maps_outside_hot[:, :, 8:] = 100.0  # would ruin the AUROC if counted
    inside = region.astype(bool)
    expected = roc_auc_score(masks[inside], maps[inside])
    assert pixel_auroc(maps_outside_hot, masks, region) == pytest.approx(expected)
    assert pixel_auroc(maps_outside_hot, masks) < expected


def test_pixel_auroc_works_on_3d_volumes():
    maps, masks = _stack()
    assert pixel_auroc(maps[None], masks[None]) == pytest.approx(pixel_auroc(maps, masks))


@pytest.mark.parametrize(
    "masks, region, match",
    [
        (np.zeros((2, 4, 4)), None, "masks must mark both"),
        (np.ones((2, 4, 4)), None, "masks must mark both"),
        (np.eye(4)[None].repeat(2, 0), np.zeros((2, 4, 4)), "inside region"),
        (np.zeros((2, 4, 5)), None, "masks must have the shape"),
        (np.eye(4)[None].repeat(2, 0), np.ones((4, 4)), "region must have the shape"),
    ],
)
def test_pixel_metrics_reject_bad_masks(masks, region, match):
    maps = np.random.default_rng(0).random((2, 4, 4))
    for fn in (pixel_auroc, pro_score):
        with pytest.raises(ValueError, match=match):
            fn(maps, masks, region)


def test_pro_of_a_perfect_map_is_one():
    _, masks = _stack()
    assert pro_score(masks.astype(float), masks) == pytest.approx(1.0)


def test_pro_weighs_regions_equally_not_pixels():
    # Case 0: a 1-pixel lesion scored above every normal pixel; case 1: an 8-pixel lesion scored below.
    maps = np.random.default_rng(0).random((2, 10, 10))
    masks = np.zeros((2, 10, 10), dtype=bool)
    masks[0, 0, 0], maps[0, 0, 0] = True, 10.0
    masks[1, 0, :8], maps[1, 0, :8] = True, -1.0
    # Overlaps are (1, 0) at every threshold with FPR < 1, so PRO = 0.5 while pixel TPR = 1/9.
    assert pro_score(maps, masks) == pytest.approx(0.5)
    assert pro_score(maps, masks, fpr_limit=0.1) == pytest.approx(0.5)


def test_pro_of_a_random_map_is_near_half_the_fpr_limit():
    rng = np.random.default_rng(0)
    masks = np.zeros((4, 32, 32), dtype=bool)
    masks[:, 5:15, 5:15] = True
    assert pro_score(rng.random(masks.shape), masks, fpr_limit=0.3) == pytest.approx(0.15, abs=0.03)


def test_pro_labels_components_per_case_and_respects_the_region():
    maps, masks = _stack(seed=2)
    region = np.ones_like(masks)
    region[1] = 0  # drop the second case entirely: PRO equals PRO of the other cases alone
    keep = [0, 2]
    assert pro_score(maps, masks, region) == pytest.approx(pro_score(maps[keep], masks[keep]))


def test_pro_rejects_fpr_limit_outside_unit_interval():
    maps, masks = _stack()
    with pytest.raises(ValueError, match="fpr_limit"):
        pro_score(maps, masks, fpr_limit=0.0)


def test_docstring_examples_run():
    assert doctest.testmod(pixel_module, extraglobs={"np": np}).failed == 0
