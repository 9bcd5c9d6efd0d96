"""The MR presets crop to the head before their intensity scaling (mama_monai/data/body_crop.py):
a threshold relative to the volume's 99th percentile, each slice's mask opened against background
noise, the demo T1 left unchanged.

The noisy head is the real MNI152 demo T1 placed in a 256 mm field of view whose air carries
Rician noise (sigma 4 % of the volume's 99th percentile: at 2 %, benchmarks/body_crop.py's, the
speckle above the threshold stays too sparse to need the opening), as a scanner writes a head
scan (the demo build cropped the template to its head); the field is the benchmark's own
(``benchmarks.body_crop.scanner_fov``), with more noise."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from benchmarks.body_crop import scanner_fov
from mama_monai.data.body_crop import BODY_BOX, CropToBodyd, body_box
from mama_monai.data.demo import load_demo_brain
from mama_monai.data.preprocessing import Preprocessor

MR_PRESETS = ("mri_t1", "mri_t2", "mri_zscore")


@pytest.fixture(scope="module")
def noisy_head(tmp_path_factory):
    target = tmp_path_factory.mktemp("head") / "t1_fov.nii.gz"
    return scanner_fov(load_demo_brain()["image"], target, "brain", noise=0.04)  # 128 x 128 voxels of 2 mm


def test_the_threshold_is_a_share_of_the_percentile_and_speckle_is_opened_away():
    image = np.zeros((1, 30, 40, 6), dtype=np.float32)
    image[0, 8:20, 10:30] = 100.0  # the head
    rng = np.random.default_rng(1)
    for z in range(6):  # isolated noise voxels above 10 % of the head's intensity, a different set in each slice
        rows, cols = rng.integers(0, 30, 25), rng.integers(0, 40, 25)
        image[0, rows, cols, z] = np.maximum(image[0, rows, cols, z], 30.0)
    assert body_box(image, 0.1, margin=0, percentile=99, opening=1) == [8, 19, 10, 29]
    assert body_box(image * 1000, 0.1, margin=0, percentile=99, opening=1) == [8, 19, 10, 29]  # no absolute scale
    assert body_box(image, 0.1, margin=0, percentile=99) != [8, 19, 10, 29]  # without the opening the speckle joins in
    assert body_box(image / 1000, 0.1, margin=0, percentile=99, opening=1) == [8, 19, 10, 29]
    assert body_box(image / 1000, 0.1, margin=0, opening=1) == [0, 29, 0, 39]  # 0.1 as an intensity: no body, no crop


def test_the_demo_t1_was_cropped_so_already_and_is_left_unchanged():
    """So the brain benchmark's numbers (docs/accuracy.md) do not move with the crop."""
    path = str(load_demo_brain()["image"])
    shape = nib.load(path).shape
    for preset in MR_PRESETS:
        cropped = Preprocessor(preset, [64, 64], crop_to_body=True)({"image": path})["image"]
        whole = Preprocessor(preset, [64, 64], crop_to_body=False)({"image": path})["image"]
        assert cropped.meta[BODY_BOX] == [0, shape[0] - 1, 0, shape[1] - 1]
        assert torch.equal(cropped.as_tensor(), whole.as_tensor()) and torch.allclose(cropped.affine, whole.affine)


@pytest.mark.parametrize("preset", MR_PRESETS)
def test_a_head_in_a_noisy_field_of_view_is_cropped_to_its_extent(noisy_head, preset):
    """The box is where the demo head lies in the wider field (from the two files' affines), widened
    by the 2-voxel margin; the model's input is then close to the demo's own, the uncropped one is not
    (not for ``mri_zscore``, whose statistics over the non-zero voxels take in the noise: that preset
    is for zero-background volumes, as its file says)."""
    demo = Preprocessor(preset, [64, 64])
    small = demo.load({"image": str(load_demo_brain()["image"])})["image"]
    big = demo.load({"image": str(noisy_head)})["image"]
    origin = np.linalg.solve(big.affine.numpy(), small.affine.numpy() @ np.array([0.0, 0.0, 0.0, 1.0]))
    r0, c0 = (int(round(v)) for v in origin[:2])
    w, h = small.shape[1:3]
    out = demo({"image": str(noisy_head)})["image"]
    assert out.meta[BODY_BOX] == [r0 - 2, r0 + w - 1 + 2, c0 - 2, c0 + h - 1 + 2]
    if preset == "mri_zscore":
        return
    own = demo({"image": str(load_demo_brain()["image"])})["image"].as_tensor()
    whole = Preprocessor(preset, [64, 64], crop_to_body=False)({"image": str(noisy_head)})["image"].as_tensor()
    assert float((out.as_tensor() - own).abs().mean()) < float((whole - own).abs().mean()) / 3


def test_the_crop_comes_before_the_intensity_scaling(tmp_path):
    """The percentiles are those of the head, not of the field: a head with zero air around it is
    scaled exactly as the demo file was, however wide the field (margin 0 so the box is the head)."""
    from mama_monai.data.presets import get_preset

    source = nib.load(load_demo_brain()["image"])
    wide = np.pad(np.asarray(source.dataobj), ((40, 40), (30, 30), (0, 0)))
    affine = source.affine.copy()
    affine[:3, 3] -= affine[:3, :3] @ np.array([40, 30, 0])
    nib.save(nib.Nifti1Image(wide, affine), tmp_path / "wide.nii.gz")
    out = {}
    for name, path in (("demo", load_demo_brain()["image"]), ("wide", tmp_path / "wide.nii.gz")):
        loader, *chain = get_preset("mri_t1", [64, 64], 3, with_loader=True).transforms
        crop = next(t for t in chain if isinstance(t, CropToBodyd))
        crop.margin = 0
        data = loader({"image": str(path)})
        for t in chain:
            data = t(data)
        out[name] = data["image"].as_tensor()
    torch.testing.assert_close(out["wide"], out["demo"])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"opening": -1}, r"opening must be an int >= 0 \(voxels\), got -1"),
    ({"opening": 1.5}, r"opening must be an int >= 0 \(voxels\), got 1.5"),
    ({"percentile": 0}, r"percentile must be None or a number in \(0, 100\], got 0"),
    ({"percentile": 101.0}, r"percentile must be None or a number in \(0, 100\], got 101.0"),
])  # fmt: skip
def test_bad_crop_settings_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CropToBodyd("image", threshold=0.1, **kwargs)
