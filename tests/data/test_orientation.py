"""Canonical orientation: a volume stored in any voxel order is sliced axially, and maps go back
onto the file's own grid voxel for voxel (checked with nibabel's independent reorientation)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from nibabel.orientations import axcodes2ornt, ornt_transform

from mama_monai.data import load_demo_ct
from mama_monai.data.orientation import axcodes, restore_orientation, to_canonical
from mama_monai.data.presets import get_preset
from mama_monai.workflows.scoring import score_cases
from tests.workflows.test_scoring import _model

#: voxel orders a file may use: the demo CT's own (LPS), RAS, coronal storage, a full permutation
STORAGE = ["LPS", "RAS", "LSP", "SAR"]


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> dict[str, str]:
    """The real demo CT (6 slices around the nodule) written in every voxel order of STORAGE."""
    root = tmp_path_factory.mktemp("orientation")
    crop = nib.load(load_demo_ct()["image"]).slicer[:, :, 110:116]
    crop = nib.Nifti1Image(np.asarray(crop.dataobj), crop.affine)
    paths = {}
    for codes in STORAGE:
        image = crop.as_reoriented(ornt_transform(axcodes2ornt(nib.aff2axcodes(crop.affine)), axcodes2ornt(tuple(codes))))
        assert "".join(nib.aff2axcodes(image.affine)) == codes
        paths[codes] = str(root / f"ct_{codes}.nii.gz")
        nib.save(image, paths[codes])
    return paths


@pytest.mark.parametrize("codes", STORAGE)
def test_every_voxel_order_gives_the_same_axial_slices(stored, codes):
    load = get_preset("ct_lung", spatial_size=(32, 32), spatial_dims=3, with_loader=True)
    reference = load({"image": stored["LPS"]})["image"]
    got = load({"image": stored[codes]})["image"]
    assert got.meta["source_axcodes"] == codes
    assert axcodes(got.affine) == "LPS"
    torch.testing.assert_close(got.as_tensor(), reference.as_tensor())
    np.testing.assert_allclose(got.affine.numpy(), reference.affine.numpy(), atol=1e-5)


@pytest.mark.parametrize("codes", STORAGE)
def test_restore_orientation_is_the_exact_inverse(stored, codes):
    from mama_monai.data import load_image

    original = load_image(stored[codes])
    back = restore_orientation(to_canonical(original.clone()))
    assert torch.equal(back.as_tensor(), original.as_tensor())
    np.testing.assert_allclose(back.affine.numpy(), original.affine.numpy(), atol=1e-6)


def test_maps_of_a_reoriented_file_are_the_same_map_on_its_own_grid(stored, tmp_path):
    model = _model(tmp_path / "model.pt", threshold=0.05)
    paths = [stored[c] for c in STORAGE]
    score_cases(model, paths, tmp_path / "scores", batch_size=4)
    maps = {c: nib.load(tmp_path / "scores" / f"case_{i + 1:03d}" / "anomaly_map.nii.gz") for i, c in enumerate(STORAGE)}
    reference = maps["LPS"]
    assert np.asarray(reference.dataobj).max() > 0
    for codes in STORAGE[1:]:
        source = nib.load(stored[codes])
        got = maps[codes]
        assert got.shape == source.shape  # the file's own grid ...
        np.testing.assert_allclose(got.affine, source.affine, atol=1e-5)
        # ... holding the reference map, reoriented by nibabel (independent of our code)
        expected = reference.as_reoriented(ornt_transform(axcodes2ornt(("L", "P", "S")), axcodes2ornt(tuple(codes))))
        np.testing.assert_allclose(np.asarray(got.dataobj), np.asarray(expected.dataobj), rtol=1e-5, atol=1e-7)
