"""AnomalyMap against hand-computed maps and scores (scipy / numpy references, not the code under test)."""

import numpy as np
import pytest
import torch
from scipy import ndimage
from scipy.special import erf

from mama_monai.engines import AnomalyMap, anomaly_map_args


def _pair(seed=0, shape=(2, 1, 24, 20)):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g), torch.rand(shape, generator=g)


def test_map_is_squared_error_mean_over_channels():
    x = torch.zeros(1, 2, 3, 3)
    r = torch.zeros(1, 2, 3, 3)
    r[0, 0, 1, 1], r[0, 1, 1, 1] = 2.0, -4.0  # squared: 4 and 16, channel mean 10 (absolute error would give 3)
    m = AnomalyMap(2, sigma=0, reduction="max").map(x, r)
    expected = torch.zeros(1, 1, 3, 3)
    expected[0, 0, 1, 1] = 10.0
    torch.testing.assert_close(m, expected)


def test_smoothing_is_a_gaussian_of_sigma_pixels():
    # reference: the pixel-integrated (erf) Gaussian, truncated at 4 sigma, zero padding, applied
    # separably with scipy; a different sigma or no smoothing differs by > 1e-2
    x, r = _pair()
    err = ((x - r) ** 2).mean(1).numpy().astype(np.float64)
    sigma, tail = 2.0, 8
    t = np.arange(-tail, tail + 1)
    kernel = 0.5 * (erf((t + 0.5) / (sigma * np.sqrt(2))) - erf((t - 0.5) / (sigma * np.sqrt(2))))
    expected = np.stack(
        [ndimage.correlate1d(ndimage.correlate1d(e, kernel, axis=0, mode="constant"), kernel, axis=1, mode="constant") for e in err]
    )
    got = AnomalyMap(2, sigma=sigma, reduction="max").map(x, r)[:, 0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "max", "percentile"])
def test_scores_reduce_the_whole_map_without_foreground(reduction):
    x, r = _pair(1)
    scorer = AnomalyMap(2, sigma=0, reduction=reduction, percentile=90.0)
    err = ((x - r) ** 2)[:, 0].reshape(2, -1).numpy()
    expected = {"mean": err.mean(1), "max": err.max(1), "percentile": np.percentile(err, 90.0, axis=1)}[reduction]
    np.testing.assert_allclose(scorer(x, r).numpy(), expected, rtol=1e-5)


def test_foreground_is_input_above_threshold_eroded_by_border():
    x = torch.zeros(1, 1, 12, 12)
    x[0, 0, 2:10, 3:9] = 0.5  # an 8 x 6 body
    scorer = AnomalyMap(2, sigma=0, reduction="max", foreground_threshold=0.1, border=1)
    expected = np.zeros((12, 12), bool)
    expected[3:9, 4:8] = True  # one pixel eroded on every side
    np.testing.assert_array_equal(scorer.foreground(x)[0, 0].numpy() > 0, expected)


def test_map_is_zero_outside_the_foreground_and_scores_use_only_the_inside():
    g = torch.Generator().manual_seed(3)
    x = torch.zeros(1, 1, 16, 16)
    x[0, 0, 4:12, 4:12] = 0.6
    r = x + 0.3 * torch.rand(x.shape, generator=g)
    r[0, 0, 0, 0] = 5.0  # a huge error in the air: must not decide the score
    scorer = AnomalyMap(2, sigma=0, reduction="percentile", percentile=75.0, foreground_threshold=0.1, border=0)
    amap = scorer.map(x, r)[0, 0].numpy()
    inside = np.zeros((16, 16), bool)
    inside[4:12, 4:12] = True
    assert np.all(amap[~inside] == 0)
    err = ((x - r) ** 2)[0, 0].numpy()
    np.testing.assert_allclose(amap[inside], err[inside], rtol=1e-6)
    np.testing.assert_allclose(float(scorer.score(scorer.map(x, r))), np.percentile(err[inside], 75.0), rtol=1e-5)
    mean_scorer = AnomalyMap(2, sigma=0, reduction="mean", foreground_threshold=0.1)
    np.testing.assert_allclose(float(mean_scorer(x, r)), err[inside].mean(), rtol=1e-5)


def test_image_without_foreground_is_scored_over_every_pixel():
    x, r = torch.zeros(1, 1, 8, 8), torch.full((1, 1, 8, 8), 0.5)
    scorer = AnomalyMap(2, sigma=0, reduction="percentile", foreground_threshold=0.1)
    assert float(scorer(x, r)) == 0.0  # the map is zero outside the (empty) foreground


def test_3d_maps():
    x, r = _pair(4, (1, 1, 10, 9, 8))
    scorer = AnomalyMap(3, sigma=0, reduction="max")
    np.testing.assert_allclose(float(scorer(x, r)), float(((x - r) ** 2).max()), rtol=1e-6)


def test_anomaly_map_args_keeps_only_constructor_arguments():
    scoring = {"sigma": 1.0, "reduction": "max", "threshold_quantile": 0.95, "border": 2}
    assert anomaly_map_args(scoring) == {"sigma": 1.0, "reduction": "max", "border": 2}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sigma": -1}, r"sigma must be a number in \[0, 64\] .* got -1"),
        ({"sigma": 1e6}, r"sigma must be a number in \[0, 64\] .* got 1000000.0"),
        ({"reduction": "median"}, r"reduction .*median"),
        ({"percentile": 0}, r"percentile must be a number in \(0, 100\], got 0"),
        ({"percentile": 101}, r"percentile must be a number in \(0, 100\], got 101"),
        ({"foreground_threshold": float("nan")}, r"foreground_threshold must be a finite number"),
        ({"border": -2}, r"border must be an int >= 0 .* got -2"),
        ({"border": 1.5}, r"border must be an int >= 0 .* got 1.5"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AnomalyMap(2, **kwargs)


def test_defaults_and_the_edges_of_each_argument():
    scorer = AnomalyMap()
    assert (scorer.spatial_dims, scorer.sigma, scorer.reduction, scorer.percentile) == (2, 2.0, "percentile", 99.0)
    assert (scorer.foreground_threshold, scorer.border) == (None, 0)
    assert isinstance(AnomalyMap(2, sigma=0).smooth, torch.nn.Identity)  # 0 disables smoothing
    assert not isinstance(AnomalyMap(2, sigma=0.5).smooth, torch.nn.Identity)  # any sigma > 0 smooths
    assert AnomalyMap(2, sigma=64).sigma == 64.0 and AnomalyMap(2, percentile=100).percentile == 100.0
    assert AnomalyMap(2, percentile=0.5).percentile == 0.5
    for kwargs in ({"sigma": 64.5}, {"sigma": True}, {"percentile": True}, {"foreground_threshold": True},
                   {"foreground_threshold": float("-inf")}):  # fmt: skip
        with pytest.raises(ValueError, match=f"{next(iter(kwargs))} must be"):
            AnomalyMap(2, **kwargs)


def test_foreground_is_strictly_above_the_threshold_and_erodes_in_3d():
    image = torch.zeros(1, 1, 5, 5, 5)
    image[..., 1:4, 1:4, 1:4] = 0.5
    image[..., 0, 0, 0] = 0.2  # exactly the threshold: background
    fg = AnomalyMap(3, sigma=0, foreground_threshold=0.2).foreground(image)
    assert fg.dtype == torch.float32 and int(fg.sum()) == 27
    eroded = AnomalyMap(3, sigma=0, foreground_threshold=0.2, border=1).foreground(image)
    assert eroded.flatten().nonzero().flatten().tolist() == [2 * 25 + 2 * 5 + 2]  # the cube's centre only
    assert AnomalyMap(2).foreground(torch.rand(1, 1, 4, 4, dtype=torch.float64)).dtype == torch.float32


def test_an_image_without_foreground_beside_one_with_foreground_is_scored_over_its_own_pixels():
    image = torch.zeros(2, 1, 6, 6)
    image[0, :, 1:5, 1:5] = 1.0  # foreground in the first image only
    recon = image.clone()
    recon[0, :, 2, 2] = 0.0  # error 1 at one foreground pixel of the first image
    recon[1] = 0.5  # error 0.25 everywhere in the second, which has no foreground
    # the map is 0 outside the foreground, so the second image's map is all 0 and its score is 0;
    # the first is reduced over its map's non-zero support (one pixel of error 1)
    for reduction in ("mean", "max", "percentile"):
        scorer = AnomalyMap(2, sigma=0, reduction=reduction, percentile=50, foreground_threshold=0.5)
        scores = scorer(image, recon)
        assert scores.shape == (2,) and scores.tolist() == [1.0, 0.0]


def test_dark_and_bright_lesions_of_equal_contrast_score_alike_with_the_configured_scoring():
    """Issue 10 ("residual maps that detect dark and bright anomalies alike"), known answer: a
    disk of +-40 % (the product's lesion simulator) on a body of intensity 0.75, scored with
    configs/train.yaml's scoring against the clean image (a reconstruction that does not
    reproduce the lesion). The dark disk lies inside the foreground and scores exactly as the
    bright one does, above the clean image's 0."""
    import yaml
    from pathlib import Path

    from mama_monai.data.simulated_lesions import Lesion, insert_lesions

    scoring = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / "train.yaml").read_text())["scoring"]
    scorer = AnomalyMap(2, **anomaly_map_args(scoring))
    yy, xx = np.mgrid[:64, :64]
    body = np.where((yy - 32) ** 2 + (xx - 32) ** 2 <= 26**2, 0.75, 0.0).astype(np.float32)
    clean = torch.from_numpy(body)[None, None]
    scores, masks = {}, {}
    for name, contrast in (("dark", -0.4), ("bright", 0.4)):
        lesioned, masks[name] = insert_lesions(body, [Lesion((30, 36), 5.0, contrast)])
        x = torch.from_numpy(lesioned)[None, None]
        assert bool(scorer.foreground(x)[0, 0][torch.from_numpy(masks[name]) > 0].all()), name
        scores[name] = float(scorer(x, clean))
    np.testing.assert_array_equal(masks["dark"], masks["bright"])
    assert float(scorer(clean, clean)) == 0.0
    assert scores["dark"] > 0.01  # the centre's squared error is 0.3^2 = 0.09 before smoothing
    np.testing.assert_allclose(scores["dark"], scores["bright"], rtol=1e-5)
