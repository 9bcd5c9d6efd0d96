"""SimpleITKReader against independent readers: nibabel for NIfTI, SimpleITK for series, PIL for PNG."""

from __future__ import annotations

import gzip
import os
import tracemalloc

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import torch
from monai.data import PILReader
from monai.transforms import LoadImage, LoadImaged, SaveImage
from PIL import Image

from mama_monai.data.errors import ImageLoadError
from mama_monai.data.loading import load_image
from mama_monai.data.readers import SimpleITKReader


def _oblique_affine(shear: float = 0.0) -> np.ndarray:
    c, s = np.cos(0.4), np.sin(0.4)
    rotation = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]) @ np.array(
        [[1, 0, 0], [0, np.cos(0.2), -np.sin(0.2)], [0, np.sin(0.2), np.cos(0.2)]]
    )
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.8, 0.9, 2.5])
    affine[0, 1] += shear
    affine[:3, 3] = [-90.0, 12.5, 33.0]
    return affine


@pytest.mark.parametrize("shear", [0.0, 0.3])
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_matches_nibabel_shape_affine_voxels(tmp_path, shear, suffix):
    data = np.random.default_rng(0).normal(size=(7, 6, 5)).astype(np.float32)
    path = tmp_path / f"vol{suffix}"
    nib.save(nib.Nifti1Image(data, _oblique_affine(shear)), path)
    reference = nib.load(path)
    image = load_image(path)
    assert image.shape == (1, *reference.shape)
    assert np.allclose(image.affine.numpy(), reference.affine, atol=1e-5)
    assert np.array_equal(image[0].numpy(), reference.get_fdata(dtype=np.float32))
    assert image.meta["space"] == "RAS" and image.meta["filename_or_obj"] == str(path)


def test_nifti_with_qform_only_matches_nibabel(tmp_path):
    img = nib.Nifti1Image(np.arange(60, dtype=np.int16).reshape(3, 4, 5), _oblique_affine())
    img.set_sform(None, code=0)
    nib.save(img, tmp_path / "q.nii.gz")
    reference = nib.load(tmp_path / "q.nii.gz")
    assert np.allclose(load_image(tmp_path / "q.nii.gz").affine.numpy(), reference.affine, atol=1e-5)


def test_4d_nifti_refused_and_singleton_time_accepted(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3, 2), np.float32), np.eye(4)), tmp_path / "t.nii.gz")
    with pytest.raises(ImageLoadError, match=r"t.nii.gz: 4D image of shape \(4, 4, 3, 2\); expected a 2D or 3D image"):
        load_image(tmp_path / "t.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3, 1), np.float32), np.eye(4)), tmp_path / "s.nii.gz")
    assert load_image(tmp_path / "s.nii.gz").shape == (1, 4, 4, 3)


def test_nan_voxels_are_an_error_or_filled_with_warning(tmp_path):
    data = np.ones((4, 4, 3), np.float32)
    data[1, 2, 0] = np.nan
    data[0, 0, 0] = -5.0
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "nan.nii.gz")
    with pytest.raises(ImageLoadError, match=r"nan.nii.gz: 1 non-finite voxel\(s\) \(NaN or inf\) out of 48"):
        load_image(tmp_path / "nan.nii.gz")
    with pytest.warns(UserWarning, match=r"replaced 1 non-finite voxel\(s\) by -5"):
        filled = load_image(tmp_path / "nan.nii.gz", nan_policy="fill")
    assert float(filled[0, 1, 2, 0]) == -5.0


def test_series_matches_simpleitk_series_reader(tmp_path, dicom, ct_volume):
    c, s = np.cos(0.25), np.sin(0.25)
    dicom.write_series(tmp_path, ct_volume, orientation=(c, s, 0.0, -s, c, 0.0), seed=2)
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(tmp_path))
    reference = sitk.ReadImage(files)
    image = load_image(tmp_path)
    assert image.shape == (1, *reference.GetSize())
    assert np.allclose(image.affine.numpy(), dicom.ras_affine_from_sitk(reference), atol=1e-4)
    assert np.array_equal(image[0].numpy(), sitk.GetArrayFromImage(reference).T)  # (x, y, z) order
    assert np.allclose(image.meta["spacing"], (0.8, 0.7, 2.5), atol=1e-5)  # (columns, rows, slices)


def test_series_slices_in_anatomical_order_whatever_names_and_instance_numbers(tmp_path, dicom, ct_volume):
    dicom.write_series(tmp_path, ct_volume, shuffle=True, seed=11)
    image = load_image(tmp_path)
    hu = ct_volume.astype(np.float32) - 1024  # rescale intercept
    for k in range(ct_volume.shape[0]):
        assert np.array_equal(image[0, :, :, k].numpy(), hu[k].T)
    world_z = [float((image.affine.numpy() @ np.array([0, 0, k, 1]))[2]) for k in range(6)]
    assert np.allclose(np.diff(world_z), 2.5)


def test_folder_with_several_series_needs_uid(tmp_path, dicom, ct_volume):
    dicom.write_series(tmp_path, ct_volume, series_uid="1.2.3.10")
    dicom.write_series(tmp_path, ct_volume[:4] + 7, series_uid="1.2.3.20", seed=4)
    with pytest.raises(ImageLoadError, match=r"holds 2 DICOM series.*1\.2\.3\.10.*1\.2\.3\.20"):
        load_image(tmp_path)
    chosen = load_image(tmp_path, series_uid="1.2.3.20")
    assert chosen.shape[-1] == 4 and chosen.meta["series_uid"] == "1.2.3.20"


def test_missing_slice_rejected_through_loadimage(tmp_path, dicom, ct_volume):
    dicom.write_series(tmp_path, ct_volume, skip=(2,))
    with pytest.raises(ImageLoadError, match="irregular slice spacing"):
        load_image(tmp_path)


def test_folder_holding_one_radiograph_file(dicom):
    folder = os.path.dirname(dicom.testdata("dicomdirtests/77654033/CR1/6154"))
    image = load_image(folder)  # a folder holding one radiograph file
    assert image.shape == (1, 16, 16, 1) and image.meta["modality"] == "CR"
    assert np.allclose(image.meta["spacing"], (0.1, 0.1, 1.0))


def test_real_ct_file_geometry_matches_simpleitk(dicom):
    path = dicom.testdata("CT_small.dcm")
    image = load_image(path)
    reference = sitk.ReadImage(path)
    assert np.allclose(image.affine.numpy(), dicom.ras_affine_from_sitk(reference), atol=1e-5)
    assert image.meta["source_format"] == "dicom_file"
    assert not any("Patient" in str(k) or "0010" in str(k) for k in image.meta)


def test_png_matches_monai_pil_reader(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 255, size=(9, 13), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "x.png")
    ours = load_image(tmp_path / "x.png")
    reference = LoadImage(reader=PILReader(), image_only=True, ensure_channel_first=True)(tmp_path / "x.png")
    assert ours.shape == reference.shape == (1, 13, 9)
    assert torch.equal(ours.as_tensor(), reference.as_tensor())


def test_rgb_jpeg_to_grayscale(tmp_path):
    rgb = np.zeros((8, 10, 3), np.uint8)
    rgb[..., 1] = 200
    Image.fromarray(rgb).save(tmp_path / "x.jpg", quality=100)
    assert load_image(tmp_path / "x.jpg").shape == (3, 10, 8)
    gray = load_image(tmp_path / "x.jpg", to_grayscale=True)
    assert gray.shape == (1, 10, 8) and abs(float(gray.mean()) - 0.587 * 200) < 3


def test_usable_as_reader_of_monai_loadimaged(tmp_path, dicom, ct_volume):
    dicom.write_series(tmp_path / "s", ct_volume)
    reader = SimpleITKReader()
    out = LoadImaged("image", reader=reader, ensure_channel_first=True)({"image": str(tmp_path / "s")})
    assert out["image"].shape == (1, 24, 20, 6)
    assert reader.verify_suffix(str(tmp_path / "s"))
    assert not reader.verify_suffix(str(tmp_path / "notes.txt"))


def test_saveimage_writes_back_on_the_original_grid(tmp_path, dicom, ct_volume):
    dicom.write_series(tmp_path / "s", ct_volume, orientation=(0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
    image = load_image(tmp_path / "s")
    SaveImage(output_dir=tmp_path / "out", output_postfix="", separate_folder=False, resample=False)(image)
    written = nib.load(tmp_path / "out" / "s.nii.gz")
    reference = sitk.ReadImage(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(tmp_path / "s")))
    assert np.allclose(written.affine, dicom.ras_affine_from_sitk(reference), atol=1e-4)
    assert np.array_equal(written.get_fdata(), image[0].numpy())


def test_unsupported_and_missing_paths(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImageLoadError, match=r"notes.txt: unsupported file type \(suffix '.txt', not DICOM\)"):
        load_image(tmp_path / "notes.txt")
    with pytest.raises(ImageLoadError, match=r"nothere.nii.gz: no such file or folder"):
        load_image(tmp_path / "nothere.nii.gz")


def test_reader_arguments_checked():
    with pytest.raises(ValueError, match=r"nan_policy must be one of \('error', 'fill'\), got 'zero'"):
        SimpleITKReader(nan_policy="zero")
    with pytest.raises(ValueError, match=r"spacing_tolerance must be in \(0, 1\), got 2"):
        SimpleITKReader(spacing_tolerance=2)


def _claiming(path, source, shape):
    """``source`` (a real NIfTI) with its header rewritten to claim ``shape``; the data stay small."""
    image = nib.load(source)
    header = image.header.copy()
    header.set_data_shape(shape)
    header["vox_offset"] = 352  # data right after the 348-byte header and the 4-byte extension flag
    raw = header.binaryblock + b"\0" * 4 + np.asarray(image.dataobj).tobytes()
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)
    return path


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_header_claiming_a_huge_image_is_refused_before_reading(tmp_path, suffix):
    small = tmp_path / "small.nii"
    nib.save(nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), np.eye(4)), small)
    huge = _claiming(tmp_path / f"huge{suffix}", small, (30000, 30000, 30000))
    tracemalloc.start()
    try:
        with pytest.raises(ImageLoadError, match=r"header claims 30000x30000x30000 voxels of int16 \(54,000,000,000,000 bytes, 49.1 TiB\), more than max_image_bytes"):
            load_image(huge)
        assert tracemalloc.get_traced_memory()[1] < 50 * 2**20  # nothing near the claim was allocated
    finally:
        tracemalloc.stop()
    with pytest.raises(ImageLoadError, match=r"\(48 bytes\), more than max_image_bytes=16 \(16 bytes\); the header is corrupt"):
        load_image(small, max_image_bytes=16)  # 48 bytes: the limit is the reader's argument
    if suffix == ".nii":
        short = _claiming(tmp_path / "short.nii", small, (20, 30, 40))
        with pytest.raises(ImageLoadError, match=r"claims 20x30x40 voxels .* but the file holds 48 bytes of data: truncated"):
            load_image(short)


@pytest.mark.parametrize("name, what", [("rtstruct.dcm", "RT Structure Set Storage"), ("test-SR.dcm", "Comprehensive SR Storage")])
def test_dicom_file_without_pixel_data_is_said_to_have_no_image(tmp_path, dicom, name, what):
    path = dicom.testdata(name)
    with pytest.raises(ImageLoadError, match=rf"DICOM file holds no image \(no pixel data: {what}"):
        load_image(path)
    folder = tmp_path / "report_only"
    folder.mkdir()
    (folder / name).write_bytes(open(path, "rb").read())
    with pytest.raises(ImageLoadError, match=rf"its DICOM files hold no image \(no pixel data: e.g. {what}"):
        load_image(folder)


def test_slightly_uneven_slice_gaps_give_one_warning_and_no_itk_chatter(tmp_path, dicom, ct_volume, capfd):
    files = dicom.write_series(tmp_path / "series", ct_volume, shuffle=False)
    ds = pydicom.dcmread(files[2])  # 0.1 mm off in a 2.5 mm spacing: within the tolerance
    position = [float(v) for v in ds.ImagePositionPatient]
    ds.ImagePositionPatient = [f"{v:.6f}" for v in (position[0], position[1], position[2] + 0.1)]
    ds.save_as(files[2])
    with pytest.warns(UserWarning) as caught:
        image = load_image(tmp_path / "series")
    assert image.shape == (1, 24, 20, 6)
    ours = [str(w.message) for w in caught if "slice gaps" in str(w.message)]
    assert len(ours) == 1 and "gaps of 2.500 mm varying by up to 0.100 mm" in ours[0]
    printed = capfd.readouterr()
    assert "Non uniform sampling" not in printed.err + printed.out and "WARNING: In" not in printed.err


@pytest.mark.parametrize("suffix", [".nrrd", ".mha", ".mhd"])
def test_nrrd_and_metaimage_match_nibabel_on_the_real_ct(tmp_path, suffix):
    """The embedded real CT (a crop) written by SimpleITK as NRRD / MetaImage reads back with the
    NIfTI's shape, voxels and RAS affine as nibabel gives them (3D Slicer's and ITK's formats)."""
    from mama_monai.data import load_demo_ct

    source = nib.load(load_demo_ct()["image"])
    crop = source.slicer[40:72, 30:60, 60:64]
    nib.save(crop, tmp_path / "crop.nii.gz")
    sitk.WriteImage(sitk.ReadImage(str(tmp_path / "crop.nii.gz")), str(tmp_path / f"crop{suffix}"))
    ours = load_image(tmp_path / f"crop{suffix}")
    assert ours.shape == (1, *crop.shape)
    np.testing.assert_array_equal(ours.as_tensor()[0].numpy(), np.asarray(crop.dataobj))
    np.testing.assert_allclose(ours.affine.numpy(), crop.affine, atol=1e-4)
    assert ours.meta["source_format"] == "volume"


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_radiograph_keeps_its_values(tmp_path, suffix):
    """A 16-bit grayscale PNG / TIFF is read at full depth (values above 255 kept), as PIL reads it."""
    pixels = np.random.default_rng(2).integers(0, 65535, size=(11, 7), dtype=np.uint16)
    Image.fromarray(pixels).save(tmp_path / f"cxr{suffix}")
    reference = np.asarray(Image.open(tmp_path / f"cxr{suffix}"))
    assert reference.max() > 255  # the file really is 16-bit
    ours = load_image(tmp_path / f"cxr{suffix}")
    assert ours.shape == (1, 7, 11)  # (C, W, H)
    np.testing.assert_array_equal(ours.as_tensor()[0].numpy().T, reference)
