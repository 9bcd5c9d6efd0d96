"""The one NIfTI writer: voxels, affine, codes and units as given, read back with nibabel."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import torch
from monai.data import MetaTensor

from mama_monai.data.nifti import write_nifti

AFFINE = np.array([[0.7, 0, 0, 1.0], [0, -0.8, 0, 2.0], [0, 0, 2.5, -3.0], [0, 0, 0, 1]])


def _check(path, expected):
    image = nib.load(path)
    np.testing.assert_array_equal(np.asarray(image.dataobj), expected)
    np.testing.assert_allclose(image.affine, AFFINE)
    assert (int(image.header["qform_code"]), int(image.header["sform_code"])) == (1, 1)
    assert image.header.get_xyzt_units()[0] == "mm"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left


def test_a_plain_map_and_mask_are_written_as_given(tmp_path):
    rng = np.random.default_rng(0)
    amap = rng.random((7, 9, 3)).astype(np.float32)
    write_nifti(tmp_path / "map" / "anomaly_map.nii.gz", amap, AFFINE, np.float32)
    _check(tmp_path / "map" / "anomaly_map.nii.gz", amap)
    write_nifti(tmp_path / "mask" / "anomaly_mask.nii.gz", amap >= 0.5, AFFINE, np.uint8)
    _check(tmp_path / "mask" / "anomaly_mask.nii.gz", (amap >= 0.5).astype(np.uint8))
    assert nib.load(tmp_path / "mask" / "anomaly_mask.nii.gz").get_data_dtype() == np.uint8


def test_a_channel_first_metatensor_loses_its_channel_axis_only(tmp_path):
    volume = np.arange(7 * 9 * 3, dtype=np.int16).reshape(7, 9, 3)
    write_nifti(tmp_path / "ct.nii", MetaTensor(torch.from_numpy(volume)[None], affine=torch.as_tensor(AFFINE)))
    _check(tmp_path / "ct.nii", volume)
