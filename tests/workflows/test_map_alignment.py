"""The written anomaly map lies on the input's voxels in world space, checked with SimpleITK.

A network whose reconstruction is exactly 0 makes the anomaly map the smoothed square of the
preprocessed input, a picture of the anatomy itself. On the real (left-right and front-back
asymmetric) demo CT, stored as a DICOM series and as NIfTI, the map read back must match the
input read independently by SimpleITK voxel for voxel far better than any flipped or transposed
version of it: a map written flipped, transposed or shifted in world space fails.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from mama_monai.data import load_demo_ct
from mama_monai.workflows.scoring import score_cases
from tests.data.conftest import write_series
from tests.model_files import tiny_model_file


@pytest.fixture(scope="module")
def zero_model(tmp_path_factory):
    scoring = {"sigma": 0.0, "reduction": "max"}
    return tiny_model_file(tmp_path_factory.mktemp("zero") / "model.pt", 1.0, spatial_size=(64, 64), scoring=scoring, zero=True)


@pytest.fixture(scope="module")
def ct_inputs(tmp_path_factory):
    """The demo CT's slices 100-105 as NIfTI and as a DICOM series on the same world grid."""
    root = tmp_path_factory.mktemp("ct")
    image = sitk.ReadImage(str(load_demo_ct()["image"]))[:, :, 100:106]
    assert np.allclose(image.GetDirection(), np.eye(3).ravel())  # LPS-aligned: DICOM orientation (1,0,0,0,1,0)
    nifti = root / "ct.nii.gz"
    sitk.WriteImage(image, str(nifti))
    sx, sy, sz = image.GetSpacing()
    write_series(root / "series", sitk.GetArrayFromImage(image).astype(np.int32) + 1024, spacing=(sy, sx, sz),
                 origin=image.GetOrigin(), seed=3)  # fmt: skip
    return {"nifti": nifti, "series": root / "series"}


def _lung_window_squared(image: sitk.Image) -> np.ndarray:
    hu = sitk.GetArrayFromImage(image).astype(np.float64)  # (z, y, x), SimpleITK's own reading
    return np.clip((hu + 1000.0) / 1400.0, 0.0, 1.0) ** 2


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize("kind", ["nifti", "series"])
def test_map_matches_the_input_voxel_for_voxel_in_world_space(zero_model, ct_inputs, kind, tmp_path):
    score_cases(zero_model, [ct_inputs[kind]], tmp_path / "scores")
    written = sitk.ReadImage(str(tmp_path / "scores" / "case_001" / "anomaly_map.nii.gz"))
    source = sitk.ReadImage(str(ct_inputs["nifti"]))
    # same world grid as the input, read by SimpleITK (not by our reader)
    assert written.GetSize() == source.GetSize()
    np.testing.assert_allclose(written.GetOrigin(), source.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(written.GetSpacing(), source.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(written.GetDirection(), source.GetDirection(), atol=1e-5)
    got = sitk.GetArrayFromImage(written).astype(np.float64)
    expected = _lung_window_squared(source)
    right = _correlation(got, expected)
    assert right > 0.9, right
    for wrong in (expected[:, :, ::-1], expected[:, ::-1, :], np.roll(expected, 5, axis=2)):
        assert _correlation(got, wrong) < right - 0.1
