"""Volume → slices → volume (mama_monai.data.slicing)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from mama_monai.data.loading import load_image
from mama_monai.data.presets import get_preset
from mama_monai.data.slicing import slice_volume, stack_slices


def _volume(shape=(1, 12, 10, 7)) -> MetaTensor:
    c, s = np.cos(0.3), np.sin(0.3)
    affine = np.array([[-0.7 * c, 0.8 * s, 0, 100.0], [-0.7 * s, -0.8 * c, 0, 50.0], [0, 0, 2.5, -30.0], [0, 0, 0, 1]])
    meta = {"spatial_shape": np.array(shape[1:]), "original_affine": affine, "filename_or_obj": "/data/ct1"}
    return MetaTensor(torch.randn(shape), affine=torch.as_tensor(affine), meta=meta)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_round_trip_is_exact_along_every_axis(axis):
    volume = _volume()
    slices = slice_volume({"image": volume, "case_id": "ct1"}, axis=axis)
    assert len(slices) == volume.shape[1 + axis % 3]
    assert all(s["case_id"] == "ct1" and s["image"].meta["filename_or_obj"] == "/data/ct1" for s in slices)
    back = stack_slices([s["image"] for s in reversed(slices)])  # order comes from slice_index
    assert torch.equal(back.as_tensor(), volume.as_tensor())
    assert torch.equal(back.affine, volume.affine)


def test_slice_affine_maps_pixels_to_the_volume_world_positions():
    volume = _volume()
    for item in slice_volume({"image": volume}):
        k = item["image"].meta["slice_index"]
        for i, j in [(0, 0), (11, 9), (3, 4)]:
            world_slice = item["image"].affine.numpy() @ np.array([i, j, 0, 1.0])
            world_volume = volume.affine.numpy() @ np.array([i, j, k, 1.0])
            assert np.allclose(world_slice, world_volume)


def test_slice_metadata_keeps_index_volume_geometry_and_source():
    volume = _volume()
    meta = slice_volume({"image": volume})[4]["image"].meta
    assert meta["slice_index"] == 4 and meta["slice_axis"] == 2 and meta["num_slices"] == 7
    assert tuple(meta["volume_shape"].tolist()) == (12, 10, 7)
    assert torch.equal(meta["volume_affine"], volume.affine)


def test_resized_per_slice_results_go_back_to_the_volume_grid():
    volume = _volume()
    slices = slice_volume({"image": volume})
    preset = get_preset("mri_zscore", spatial_size=(32, 32))
    maps = [preset(s)["image"] for s in slices]  # model-size "anomaly maps"
    assert maps[0].shape == (1, 32, 32)
    back = stack_slices(maps)
    assert back.shape == volume.shape and torch.equal(back.affine, volume.affine)


def test_volume_preset_undone_onto_the_original_grid(tmp_path, dicom, ct_volume):
    dicom.write_series(tmp_path, ct_volume)
    image = load_image(tmp_path)
    model_view = get_preset("ct_lung", spatial_size=(16, 16), spatial_dims=3)({"image": image})["image"]
    slices = slice_volume({"image": model_view})
    assert slices[0]["image"].shape == (1, 16, 16)
    back = stack_slices([s["image"] for s in slices], grid="original")
    assert back.shape == image.shape
    assert np.allclose(back.affine.numpy(), image.affine.numpy())


def test_two_d_image_is_one_slice():
    image = MetaTensor(torch.rand(1, 8, 6))
    (only,) = slice_volume({"image": image})
    assert only["image"].meta["slice_index"] == 0
    assert torch.equal(stack_slices([only["image"]]).as_tensor(), image.as_tensor())


def test_plain_tensors_with_a_reference():
    volume = _volume()
    slices = slice_volume({"image": volume})
    back = stack_slices([s["image"].as_tensor() for s in slices], reference=slices[0]["image"].meta)
    assert torch.equal(back.as_tensor(), volume.as_tensor())


def test_masks_resized_back_with_nearest_stay_binary():
    volume = _volume()
    masks = [(torch.rand(1, 5, 5) > 0.5).float() for _ in range(7)]
    back = stack_slices(masks, reference=slice_volume({"image": volume})[0]["image"].meta, mode="nearest")
    assert set(back.unique().tolist()) <= {0.0, 1.0}


def test_bad_inputs_rejected():
    volume = _volume()
    slices = [s["image"] for s in slice_volume({"image": volume})]
    with pytest.raises(ValueError, match=r"need exactly one slice per index 0..6, got indices \[0, 1, 2, 3, 4, 5\]"):
        stack_slices(slices[:-1])
    with pytest.raises(ValueError, match="slices must not be empty"):
        stack_slices([])
    with pytest.raises(ValueError, match="grid must be 'volume' or 'original', got 'model'"):
        stack_slices(slices, grid="model")
    with pytest.raises(ValueError, match=r"axis must be in \[-3, 2\] for a 3D image, got 3"):
        slice_volume({"image": volume}, axis=3)
    with pytest.raises(ValueError, match=r"must be \(C, W, H\) or \(C, W, H, D\), got shape \(5,\)"):
        slice_volume({"image": torch.zeros(5)})
    with pytest.raises(ValueError, match="slice metadata lacks"):
        stack_slices([torch.zeros(1, 4, 4)])
