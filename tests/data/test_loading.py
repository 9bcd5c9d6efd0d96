"""load_image / LoadMedicalImaged / load_many: the pinned reader and batches with bad inputs."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
import pytest
from monai.transforms import Compose

from mama_monai.data.errors import ImageLoadError
from mama_monai.data.loading import LoadFailure, LoadMedicalImaged, load_image, load_many


def test_bad_file_in_a_batch_is_reported_and_skipped(tmp_path, dicom, ct_volume, caplog):
    good_nifti = tmp_path / "good.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((4, 5, 6), np.float32), np.eye(4)), good_nifti)
    dicom.write_series(tmp_path / "series", ct_volume)
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(open(dicom.testdata("MR_truncated.dcm"), "rb").read())
    gap = tmp_path / "gap"
    dicom.write_series(gap, ct_volume, skip=(1,))
    paths = [truncated, good_nifti, tmp_path / "missing.nii", gap, tmp_path / "series"]
    with caplog.at_level(logging.WARNING):
        loaded, failures = load_many(paths)
    assert [p for p, _ in loaded] == [str(good_nifti), str(tmp_path / "series")]
    assert [f.path for f in failures] == [str(truncated), str(tmp_path / "missing.nii"), str(gap)]
    assert all(isinstance(f, LoadFailure) and f.error.startswith("ImageLoadError: ") for f in failures)
    assert "truncated or corrupt" in failures[0].error and "irregular slice spacing" in failures[2].error
    assert "skipped" in caplog.text and "truncated.dcm" in caplog.text


def test_dictionary_transform_takes_series_uid_from_the_item(tmp_path, dicom, ct_volume):
    dicom.write_series(tmp_path, ct_volume, series_uid="1.2.3.10")
    dicom.write_series(tmp_path, ct_volume[:3], series_uid="1.2.3.20", seed=4)
    chain = Compose([LoadMedicalImaged("image", series_uid_key="series_uid")])
    out = chain({"image": str(tmp_path), "series_uid": "1.2.3.20", "label": 1})
    assert out["image"].shape == (1, 24, 20, 3) and out["label"] == 1


def test_dictionary_transform_checks_reader_arguments():
    with pytest.raises(ValueError, match="nan_policy"):
        LoadMedicalImaged("image", nan_policy="drop")


def test_rejected_series_never_falls_back_to_another_reader(tmp_path, dicom, ct_volume):
    """MONAI's LoadImage would retry with PydicomReader; the pinned reader's error must surface."""
    dicom.write_series(tmp_path, ct_volume, skip=(4,))
    with pytest.raises(ImageLoadError, match="irregular slice spacing"):
        LoadMedicalImaged("image")({"image": str(tmp_path)})
    with pytest.raises(RuntimeError, match="applying transform") as err:  # Compose wraps, keeps the cause
        Compose([LoadMedicalImaged("image")])({"image": str(tmp_path)})
    assert isinstance(err.value.__cause__, ImageLoadError)


def test_loaded_image_is_float32_channel_first(dicom):
    image = load_image(dicom.testdata("MR_small.dcm"))
    assert image.dtype == np.float32 or str(image.dtype) == "torch.float32"
    assert image.shape == (1, 64, 64, 1)
