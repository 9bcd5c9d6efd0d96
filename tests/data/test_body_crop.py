"""The CT presets crop to the body before resizing (mama_monai/data/body_crop.py): the box, the
affine, the demo CTs left unchanged, masks cropped as their image, and maps put back in place.

The padded CT is the real LIDC-IDRI-0001 demo volume with air added around it, as a scanner's
square field of view has it (the demo build cropped that away)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from mama_monai.data.body_crop import BODY_BOX, CropToBodyd, body_box, crop_in_plane
from mama_monai.data.case_slices import load_case_slices
from mama_monai.data.demo import load_demo_ct
from mama_monai.data.manifest import Manifest, ManifestCase
from mama_monai.data.preprocessing import Preprocessor
from mama_monai.data.slicing import slice_volume, stack_slices

BODY = (-400 + 1000) / 1400  # -400 HU in the lung window's [0, 1]
PAD = (7, 5, 30, 12)  # air added before/after the rows, before/after the columns


@pytest.fixture(scope="module")
def padded(tmp_path_factory):
    """The demo CT and its nodule mask padded with air (-1000 HU) / 0, same voxel size, shifted origin."""
    folder = tmp_path_factory.mktemp("padded")
    paths = load_demo_ct()
    out = {}
    for key, fill in (("image", -1000), ("mask", 0)):
        img = nib.load(paths[key])
        a = np.asarray(img.dataobj)
        big = np.pad(a, ((PAD[0], PAD[1]), (PAD[2], PAD[3]), (0, 0)), constant_values=fill).astype(a.dtype)
        affine = img.affine.copy()
        affine[:3, 3] -= affine[:3, :3] @ np.array([PAD[0], PAD[2], 0])
        out[key] = folder / f"{key}.nii.gz"
        nib.save(nib.Nifti1Image(big, affine), out[key])
    return out


def test_the_box_is_the_largest_region_widened_and_clipped():
    image = torch.zeros(1, 20, 30, 4)
    image[0, 5:12, 8:20] = 1.0  # the body
    image[0, 16:18, 2:28] = 1.0  # a couch, apart and smaller
    image[0, 0, 0] = 1.0  # a stray voxel
    assert body_box(image, 0.5, margin=0) == [5, 11, 8, 19]
    assert body_box(image, 0.5, margin=3) == [2, 14, 5, 22]
    assert body_box(image, 0.5, margin=50) == [0, 19, 0, 29]  # clipped to the image
    assert body_box(torch.zeros(1, 6, 7), 0.5) == [0, 5, 0, 6]  # no body: the whole image


def test_a_couch_that_no_slice_joins_to_the_body_is_left_out():
    """As in a real scanner-framed chest CT (Lung-PET-CT-Dx A0001, 431 mm field): the couch's position
    in-plane moves along the table, so its projection along the slice axis overlaps the body's
    (the first rule, on the projection, then took the couch's width) though in no slice, and in no
    pair of neighbouring slices, do they touch: the body is the largest region connected in 3D."""
    image = torch.zeros(1, 20, 30, 4)
    image[0, 5:12, 8:20] = 1.0  # the body
    image[0, 12:15, 10:13, 0] = 1.0  # its back bulges in slice 0, down to row 14
    image[0, 16:18, 2:28, :3] = 1.0  # the couch, below the bulge in slices 0-2
    image[0, 13:15, 2:28, 3] = 1.0  # and higher in slice 3, where the body does not bulge
    assert body_box(image, 0.5, margin=0) == [5, 14, 8, 19]
    projection = image.amax(dim=3)  # the projection joins the couch of slice 3 to the bulge of slice 0
    assert body_box(projection, 0.5, margin=0) == [5, 14, 2, 27]  # the couch's width


def test_the_largest_region_is_the_one_with_most_voxels_not_the_widest_box():
    """A thin frame round the field (the widest box, few voxels) against a solid block; and random
    blobs against a count of every region's voxels (numpy's bincount) as the reference."""
    from scipy import ndimage

    from mama_monai.data.body_crop import _largest_region

    image = np.zeros((1, 40, 50, 3), dtype=np.float32)
    image[0, [0, -1], :, 1] = image[0, :, [0, -1], 1] = 1.0  # a frame: a 40 x 50 x 1 box, 176 voxels
    image[0, 10:20, 12:22] = 1.0  # a block: 10 x 10 x 3 = 300 voxels
    assert body_box(image, 0.5, margin=0) == [10, 19, 12, 21]
    rng, checked = np.random.default_rng(0), 0
    for _ in range(30):
        blobs = ndimage.binary_opening(rng.random((30, 30, 8)) > 0.55)
        labels, n = ndimage.label(blobs)
        counts = np.bincount(labels.ravel())[1:]
        if n < 2 or (counts == counts.max()).sum() > 1:  # a tie: either region is right
            continue
        assert _largest_region(labels) == ndimage.find_objects(labels)[int(np.argmax(counts))]
        checked += 1
    assert checked >= 15


def test_the_crop_moves_the_affine_to_the_boxs_first_voxel():
    affine = torch.tensor([[-0.7, 0, 0, 100.0], [0, -0.7, 0, 50.0], [0, 0, 2.5, -300.0], [0, 0, 0, 1]], dtype=torch.float64)
    image = torch.zeros(1, 20, 30, 4)
    image[0, 5:12, 8:20] = 1.0
    out = CropToBodyd("image", threshold=0.5, margin=1)({"image": MetaTensor(image, affine=affine)})["image"]
    assert tuple(out.shape) == (1, 9, 14, 4) and out.meta[BODY_BOX] == [4, 12, 7, 20]
    expected = affine.clone()
    expected[:3, 3] = (affine @ torch.tensor([4.0, 7.0, 0.0, 1.0], dtype=torch.float64))[:3]  # world of voxel (4, 7, 0)
    assert torch.allclose(out.affine, expected)
    assert torch.equal(out.as_tensor(), image[:, 4:13, 7:21])


@pytest.mark.parametrize("name", ["lidc_idri_0001", "totalseg_example_ct"])
def test_the_demo_cts_were_cropped_so_already_and_are_left_unchanged(name):
    """So the benchmark's numbers (docs/accuracy.md) do not move with the crop."""
    path = load_demo_ct()["image"] if name == "lidc_idri_0001" else load_demo_ct()["image"].parents[1] / name / "ct.nii.gz"
    cropped = Preprocessor("ct_lung", [64, 64], crop_to_body=True)({"image": str(path)})["image"]
    whole = Preprocessor("ct_lung", [64, 64], crop_to_body=False)({"image": str(path)})["image"]
    shape = nib.load(path).shape
    assert cropped.meta[BODY_BOX] == [0, shape[0] - 1, 0, shape[1] - 1]
    assert torch.equal(cropped.as_tensor(), whole.as_tensor()) and torch.allclose(cropped.affine, whole.affine)


def test_air_around_the_body_is_cropped_away(padded):
    """The padded CT is seen as the demo CT was: the box is the original extent (within the margin)."""
    out = Preprocessor("ct_lung", [64, 64])({"image": str(padded["image"])})["image"]
    shape = nib.load(load_demo_ct()["image"]).shape
    r0, r1, c0, c1 = out.meta[BODY_BOX]
    assert abs(r0 - PAD[0]) <= 2 and abs(r1 - (PAD[0] + shape[0] - 1)) <= 2
    assert abs(c0 - PAD[2]) <= 2 and abs(c1 - (PAD[2] + shape[1] - 1)) <= 2
    demo = Preprocessor("ct_lung", [64, 64])({"image": str(load_demo_ct()["image"])})["image"].as_tensor()
    whole = Preprocessor("ct_lung", [64, 64], crop_to_body=False)({"image": str(padded["image"])})["image"].as_tensor()
    # the model's input: close to the demo's own (the box is a few voxels wider), unlike the uncropped one
    assert float((out.as_tensor() - demo).abs().mean()) < float((whole - demo).abs().mean()) / 4


def test_a_mask_is_cropped_as_its_image(padded, tmp_path):
    """The nodule mask of the padded CT lands on the nodule: the loaded slices equal the crop of the
    padded files by the image's own box, computed here with numpy indexing, then resized."""
    from monai.transforms import Resize

    case = ManifestCase("n", "image.nii.gz", 1, mask="mask.nii.gz", slice_index=89)
    manifest = Manifest(dataset="padded", root=str(padded["image"].parent), cases=[case])
    (item,), failures = load_case_slices(manifest, [case], "ct_lung", [64, 64], num_workers=0, cache_dir=tmp_path / "cache")
    assert not failures
    box = Preprocessor("ct_lung", [64, 64])({"image": str(padded["image"])})["image"].meta[BODY_BOX]
    assert nib.aff2axcodes(nib.load(padded["mask"]).affine) == ("L", "P", "S")  # the loader's order: no flip
    mask = np.asarray(nib.load(padded["mask"]).dataobj)
    crop = torch.as_tensor(mask[box[0] : box[1] + 1, box[2] : box[3] + 1, 89].copy(), dtype=torch.float32)[None]
    expected = (Resize([64, 64], mode="nearest")(crop) > 0).float()
    assert item["mask"].sum() > 0 and torch.equal(item["mask"], expected)
    # the same from the cache (the box is cached beside the image)
    (again,), _ = load_case_slices(manifest, [case], "ct_lung", [64, 64], num_workers=0, cache_dir=tmp_path / "cache")
    assert torch.equal(again["mask"], item["mask"]) and torch.equal(again["image"], item["image"])


def test_results_go_back_into_the_box_on_the_loaded_grid(padded):
    """With the model size equal to the box no resize happens: stacking the slices back onto the
    loaded grid gives the scaled input inside the box, exactly, and 0 around it."""
    loaded = Preprocessor("ct_lung", [64, 64]).load({"image": str(padded["image"])})["image"]
    scaled = torch.clamp((loaded.as_tensor() + 1000) / 1400, 0, 1)
    box = body_box(scaled, BODY, 2)
    size = [box[1] - box[0] + 1, box[3] - box[2] + 1]
    image = Preprocessor("ct_lung", size)({"image": str(padded["image"])})["image"]
    assert image.meta[BODY_BOX] == box and list(image.shape[1:3]) == size
    back = stack_slices([s["image"] for s in slice_volume({"image": image})], grid="original")
    assert tuple(back.shape) == tuple(loaded.shape)
    inside = (slice(None), slice(box[0], box[1] + 1), slice(box[2], box[3] + 1))
    assert torch.allclose(back.as_tensor()[inside], scaled[inside], atol=1e-6)
    outside = torch.ones_like(scaled, dtype=torch.bool)
    outside[inside] = False
    assert back.as_tensor()[outside].abs().max() == 0
    assert torch.allclose(back.affine, torch.as_tensor(loaded.meta["original_affine"], dtype=torch.float64))


def test_crop_in_plane_keeps_every_slice():
    volume = MetaTensor(torch.rand(1, 8, 9, 5))
    assert tuple(crop_in_plane(volume, [1, 4, 2, 7]).shape) == (1, 4, 6, 5)
    assert tuple(crop_in_plane(torch.rand(1, 8, 9), [0, 7, 0, 8]).shape) == (1, 8, 9)


def test_score_writes_the_map_of_a_cropping_model_on_the_scanners_grid(padded, tmp_path):
    """score with a model file that crops (crop_to_body stored true): the NIfTI map has the padded
    input's shape and affine, 0 in the air that was cropped away, the map inside the body box; a
    file without the key (written before the crop) is scored on the whole field of view."""
    from mama_monai.workflows.scoring import score_cases
    from tests.model_files import tiny_model_file

    source = nib.load(padded["image"])
    box = Preprocessor("ct_lung", [32, 32])({"image": str(padded["image"])})["image"].meta[BODY_BOX]
    scoring = {"sigma": 1.0, "reduction": "max", "foreground_threshold": 0.02, "border": 0}
    maps = {}
    for crop in (True, None):
        extra = {} if crop is None else {"crop_to_body": crop}
        model = tiny_model_file(tmp_path / f"m_{crop}.pt", 0.05, scoring=scoring, **extra)
        score_cases(model, [padded["image"]], tmp_path / f"out_{crop}", dicom_output=False)
        written = nib.load(tmp_path / f"out_{crop}" / "case_001" / "anomaly_map.nii.gz")
        assert written.shape == source.shape and np.allclose(written.affine, source.affine, atol=1e-4)
        maps[crop] = np.asarray(written.dataobj)
    inside = np.zeros(source.shape, dtype=bool)
    inside[box[0] : box[1] + 1, box[2] : box[3] + 1] = True
    assert maps[True][~inside].max() == 0 and maps[True][inside].max() > 0
    assert not np.array_equal(maps[True], maps[None])  # the old file: no crop, another input to the network


def test_evaluate_loads_the_test_split_as_the_model_was_trained(padded, tmp_path):
    """load_test_split takes the model file's crop over the config's: a model written before the
    crop is evaluated on uncropped slices, a cropping one on cropped slices, from one config."""
    from mama_monai.data.manifest import write_manifest
    from mama_monai.workflows.config import configs_dir, load_config
    from mama_monai.workflows.splits import load_test_split

    cases = [ManifestCase("n", "image.nii.gz", 1, mask="mask.nii.gz", slice_index=89, split="test"),
             ManifestCase("t", "image.nii.gz", 0, slice_index=40, split="train")]  # fmt: skip
    path = write_manifest(Manifest(dataset="padded", root=padded["image"].parent, cases=cases), tmp_path / "m.json")
    parser = load_config(configs_dir() / "train.yaml", {"data#manifest": str(path), "data#num_workers": 0})
    direct = {crop: Preprocessor("ct_lung", [64, 64], crop)({"image": str(padded["image"])})["image"].as_tensor()[..., 89] for crop in (True, False)}
    for crop in (True, False):
        (item,) = load_test_split(parser, crop_to_body=crop)["test"]
        assert torch.equal(item["image"], direct[crop])
    (item,) = load_test_split(parser)["test"]  # the config's default: crop
    assert torch.equal(item["image"], direct[True])


@pytest.mark.parametrize("crop", [True, None])
def test_evaluate_passes_the_model_files_crop_to_the_loader(padded, tmp_path, monkeypatch, crop):
    import mama_monai.workflows.splits as splits
    from mama_monai.data.manifest import write_manifest
    from mama_monai.engines.model_spec import load_model_spec
    from mama_monai.workflows.config import configs_dir, load_config
    from mama_monai.workflows.model_evaluation import evaluate_test_split
    from tests.model_files import tiny_model_file

    cases = [ManifestCase("n", "image.nii.gz", 1, slice_index=89, split="test"), ManifestCase("m", "image.nii.gz", 0, slice_index=30, split="test")]
    path = write_manifest(Manifest(dataset="padded", root=padded["image"].parent, cases=cases), tmp_path / "m.json")
    parser = load_config(configs_dir() / "train.yaml", {"data#manifest": str(path), "data#num_workers": 0, "data#spatial_size": [32, 32]})
    seen = []
    real = splits.load_test_split
    monkeypatch.setattr(splits, "load_test_split", lambda p, crop_to_body=None: seen.append(crop_to_body) or real(p, crop_to_body))
    model = tiny_model_file(tmp_path / "model.pt", 0.05, **({} if crop is None else {"crop_to_body": crop}))
    network, spec = load_model_spec(model)
    evaluate_test_split(network, spec, parser, tmp_path / "eval", "cpu")
    assert seen == [bool(crop)]  # a file without crop_to_body: False, whatever the config's default (true)


def test_the_cache_keeps_cropped_and_uncropped_images_apart(padded, tmp_path):
    case = ManifestCase("c", "image.nii.gz", 0, slice_index=60)
    manifest = Manifest(dataset="padded", root=padded["image"].parent, cases=[case])
    loaded = {}
    for crop in (True, False, True):
        (item,), _ = load_case_slices(manifest, [case], "ct_lung", [64, 64], num_workers=0, cache_dir=tmp_path / "cache", crop_to_body=crop)
        direct = Preprocessor("ct_lung", [64, 64], crop)({"image": str(padded["image"])})["image"].as_tensor()[..., 60]
        assert torch.equal(item["image"], direct)  # a hit of the other kind would differ
        loaded.setdefault(crop, item["image"])
    assert not torch.equal(loaded[True], loaded[False])


@pytest.mark.parametrize("crop", [True, False], ids=["cropped", "uncropped"])
def test_a_mask_on_another_grid_than_its_image_is_refused_by_name(padded, tmp_path, crop):
    """The padded CT with the demo's unpadded mask: cropped, the box (image voxels) cannot apply to
    it; uncropped, resizing both to the model would put the nodule on other pixels (it was resized
    silently until 2026-12-02)."""
    import shutil

    shutil.copy(padded["image"], tmp_path / "image.nii.gz")
    shutil.copy(load_demo_ct()["mask"], tmp_path / "small_mask.nii.gz")
    case = ManifestCase("n", "image.nii.gz", 1, mask="small_mask.nii.gz", slice_index=89)
    manifest = Manifest(dataset="m", root=tmp_path, cases=[case])
    for cache in (None, tmp_path / f"cache_{crop}", tmp_path / f"cache_{crop}"):  # no cache, a miss, a hit
        items, failures = load_case_slices(manifest, [case], "ct_lung", [64, 64], num_workers=0, cache_dir=cache, crop_to_body=crop)
        assert items == [] and len(failures) == 1
        shape = nib.load(padded["image"]).shape[:2]
        assert f"mask small_mask.nii.gz: in-plane shape (170, 129), its image's is {shape}" in failures[0].error
        assert ("cropped to the body" in failures[0].error) == crop


def test_an_uncropped_mask_on_its_image_grid_is_resized_with_it(tmp_path):
    """Without the crop a mask on its image's grid is resized as the image is: the demo's nodule
    mask lands where nearest-neighbour resizing of the mask alone puts it."""
    demo = load_demo_ct()
    case = ManifestCase("n", demo["image"].name, 1, mask=demo["mask"].name, slice_index=int(np.argmax(np.asarray(nib.load(demo["mask"]).dataobj).sum((0, 1)))))
    manifest = Manifest(dataset="m", root=demo["image"].parent, cases=[case])
    (item,), failures = load_case_slices(manifest, [case], "ct_lung", [64, 64], num_workers=0, crop_to_body=False)
    assert failures == []
    from monai.transforms import Resize

    from mama_monai.data.orientation import to_canonical
    from mama_monai.data.loading import load_image

    mask = to_canonical(load_image(str(demo["mask"]))).as_tensor()[..., case.slice_index]
    expected = (Resize([64, 64], mode="nearest")(mask) > 0).float()
    assert item["mask"].sum() > 0 and torch.equal(item["mask"], torch.as_tensor(expected))
