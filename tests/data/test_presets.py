"""Modality presets read from YAML (mama_monai.data.presets)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from monai.data import MetaTensor
from PIL import Image

from mama_monai.data.presets import get_preset, list_presets, preset_path


def test_every_preset_builds_and_outputs_the_model_size():
    assert list_presets() == ["ct_lung", "ct_soft_tissue", "cxr", "mri_t1", "mri_t2", "mri_zscore"]
    image = MetaTensor(torch.linspace(-1200, 1500, 60 * 50).reshape(1, 60, 50))
    for name in list_presets():
        out = get_preset(name, spatial_size=(32, 24))({"image": image})["image"]
        assert out.shape == (1, 32, 24), name
        assert torch.isfinite(out).all(), name


def test_ct_lung_maps_the_hu_window_from_its_yaml_to_unit_range():
    config = yaml.safe_load(preset_path("ct_lung").read_text())
    hu = torch.tensor([[config["hu_min"] - 500.0, config["hu_min"], -300.0, config["hu_max"], 3000.0]])
    out = get_preset("ct_lung", spatial_size=(1, 5))({"image": MetaTensor(hu[None])})["image"]
    expected = [0.0, 0.0, (-300 - config["hu_min"]) / (config["hu_max"] - config["hu_min"]), 1.0, 1.0]
    assert np.allclose(out.flatten().numpy(), expected, atol=1e-6)


def test_cxr_percentile_scaling_is_robust_to_outliers():
    x = torch.rand(1, 100, 100) * 1000
    x[0, 0, 0] = 1e6  # a burnt-in marker
    out = get_preset("cxr", spatial_size=(100, 100))({"image": MetaTensor(x)})["image"]
    assert float(out.min()) == 0.0 and float(out.max()) == 1.0
    assert 0.4 < float(out.median()) < 0.6  # the outlier did not squash the image


def test_volume_preset_resizes_in_plane_keeps_slices_and_field_of_view():
    affine = torch.diag(torch.tensor([-0.7, -0.7, 2.5, 1.0], dtype=torch.float64))
    volume = MetaTensor(torch.rand(1, 64, 64, 9), affine=affine)
    out = get_preset("mri_t1", spatial_size=(32, 32), spatial_dims=3)({"image": volume})["image"]
    assert out.shape == (1, 32, 32, 9)
    assert np.allclose(torch.diag(out.affine)[:3].numpy(), [-1.4, -1.4, 2.5])

    def centre(a, shape):
        return (a.numpy() @ np.array([*(np.array(shape) - 1) / 2, 1.0]))[:3]

    assert np.allclose(centre(out.affine, (32, 32, 9)), centre(affine, (64, 64, 9)))


def test_mri_percentiles_are_per_volume_not_per_slice():
    volume = torch.stack([torch.full((16, 16), 10.0 * (k + 1)) for k in range(5)], dim=-1)[None]
    out = get_preset("mri_t1", spatial_size=(16, 16), spatial_dims=3)({"image": MetaTensor(volume)})["image"]
    means = out.mean(dim=(0, 1, 2))
    assert torch.all(means[1:] > means[:-1])  # slices keep their relative brightness


def test_cxr_loader_reads_rgb_png_as_gray(tmp_path):
    rgb = np.zeros((40, 30, 3), np.uint8)
    rgb[10:30, 5:25] = 180
    Image.fromarray(rgb).save(tmp_path / "cxr.png")
    out = get_preset("cxr", spatial_size=(16, 16), with_loader=True)({"image": str(tmp_path / "cxr.png")})
    assert out["image"].shape == (1, 16, 16)


def test_unknown_preset_lists_valid_names():
    with pytest.raises(ValueError, match=r"preset must be one of \['ct_lung', .*'mri_zscore'\], got 'ct_bone'"):
        get_preset("ct_bone")


@pytest.mark.parametrize("size", [(228,), (0, 228), (228.0, 228)])
def test_bad_spatial_size_rejected(size):
    with pytest.raises(ValueError, match=r"spatial_size must be two positive ints \(H, W\)"):
        get_preset("ct_lung", spatial_size=size)


def test_bad_spatial_dims_rejected():
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3, got 4"):
        get_preset("ct_lung", spatial_dims=4)


def test_mri_presets_keep_bright_lesions_above_the_upper_percentile():
    # a brain-like volume with a bright lesion at 1.3x the tissue: the first release clipped it to 1.0
    volume = torch.zeros(1, 40, 40, 4)
    volume[0, 5:35, 5:35] = 100.0
    volume[0, 18:22, 18:22, 2] = 130.0  # 16 voxels: above the 99.5th percentile
    volume[0, 0, 0, 0] = 1000.0  # one artefact voxel
    chain = get_preset("mri_t1", spatial_size=(40, 40), spatial_dims=3, crop_to_body=False)  # voxels stay where they are
    out = chain({"image": MetaTensor(volume)})["image"]
    tissue, lesion = float(out[0, 10, 10, 2]), float(out[0, 20, 20, 2])
    np.testing.assert_allclose(lesion / tissue, 1.3, rtol=1e-4)
    assert float(out.max()) == 1.5 and float(out.min()) == 0.0  # the artefact is clipped at max_value
