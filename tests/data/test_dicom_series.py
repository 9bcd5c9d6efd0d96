"""Series discovery, choice and validation (mama_monai.data.dicom_series)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import SimpleITK as sitk

from mama_monai.data.dicom_series import find_dicom_series, select_series, validate_series
from mama_monai.data.errors import ImageLoadError


def test_slices_ordered_by_position_whatever_the_names(tmp_path, dicom, ct_volume):
    written = dicom.write_series(tmp_path, ct_volume, shuffle=True, seed=3)
    (series,) = find_dicom_series(tmp_path)
    assert list(series.files) == [str(p) for p in written]
    assert sorted(series.files) != list(series.files)  # names alone would give another order
    assert np.allclose(np.diff(series.positions), 2.5)


def test_order_matches_gdcm_for_oblique_descending_series(tmp_path, dicom, ct_volume):
    c, s = np.cos(0.3), np.sin(0.3)
    orientation = (c, s, 0.0, 0.0, 0.0, -1.0)  # oblique coronal: normal points along -y'
    dicom.write_series(tmp_path, ct_volume, orientation=orientation, seed=5)
    (series,) = find_dicom_series(tmp_path)
    gdcm = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(tmp_path))
    assert [os.path.basename(f) for f in series.files] == [os.path.basename(f) for f in gdcm]


def test_real_series_order_matches_gdcm(dicom):
    folder = os.path.dirname(dicom.testdata("dicomdirtests/98892001/CT5N/2062"))
    (series,) = find_dicom_series(folder)
    gdcm = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder)
    assert [os.path.basename(f) for f in series.files] == [os.path.basename(f) for f in gdcm]
    validate_series(series)


def test_folder_split_by_series_uid_and_non_dicom_skipped(tmp_path, dicom, ct_volume):
    dicom.write_series(tmp_path / "a", ct_volume, series_uid="1.2.3.1")
    dicom.write_series(tmp_path / "b", ct_volume[:3], series_uid="1.2.3.2", seed=1)
    (tmp_path / "notes.txt").write_text("not dicom")
    series = find_dicom_series(tmp_path)
    assert [(s.uid, len(s.files)) for s in series] == [("1.2.3.1", 6), ("1.2.3.2", 3)]
    assert series[0].modality == "CT" and series[0].description == "synthetic chest"


def test_several_series_without_uid_lists_every_uid(tmp_path, dicom, ct_volume):
    dicom.write_series(tmp_path, ct_volume, series_uid="1.2.3.1")
    dicom.write_series(tmp_path, ct_volume[:2], series_uid="1.2.3.2", seed=9)
    series = find_dicom_series(tmp_path)
    with pytest.raises(ImageLoadError, match=r"holds 2 DICOM series; choose one with series_uid") as err:
        select_series(series, tmp_path)
    assert "1.2.3.1" in str(err.value) and "1.2.3.2" in str(err.value) and str(tmp_path) in str(err.value)
    assert select_series(series, tmp_path, "1.2.3.2").uid == "1.2.3.2"
    with pytest.raises(ImageLoadError, match=r"series_uid='9.9' not found; series found: 1.2.3.1"):
        select_series(series, tmp_path, "9.9")


def test_empty_folder_named_in_error(tmp_path):
    with pytest.raises(ImageLoadError, match=r"folder is empty; expected DICOM files") as err:
        find_dicom_series(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_folder_of_non_dicom_files_named_in_error(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "b.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ImageLoadError, match=r"no DICOM image among its 2 file\(s\) \(e.g. a.txt, b.png\)"):
        find_dicom_series(tmp_path)


def test_missing_slice_is_an_error_naming_the_neighbours(tmp_path, dicom, ct_volume):
    written = dicom.write_series(tmp_path, ct_volume, skip=(3,))
    (series,) = find_dicom_series(tmp_path)
    with pytest.raises(ImageLoadError, match=r"irregular slice spacing: gap of 5.000 mm") as err:
        validate_series(series)
    message = str(err.value)
    assert written[2].name in message and written[3].name in message
    assert "spacing is 2.500 mm, about 1 missing slice(s)" in message


def test_mixed_sizes_is_an_error_naming_the_odd_file(tmp_path, dicom, ct_volume):
    written = dicom.write_series(tmp_path, ct_volume, series_uid="1.2.3.7")
    odd = written[4]
    dicom.write_file(
        odd,
        np.zeros((10, 24), np.int16),
        SeriesInstanceUID="1.2.3.7",
        ImagePositionPatient=[-120, -110, 50],
        ImageOrientationPatient=[1, 0, 0, 0, 1, 0],
        InstanceNumber=77,
    )
    (series,) = find_dicom_series(tmp_path)
    with pytest.raises(ImageLoadError, match=rf"mixes image sizes: most files are 20x24 .* but {odd.name} \(10x24\)"):
        validate_series(series)


def test_missing_position_falls_back_to_instance_number_with_warning(tmp_path, dicom):
    for number in (3, 1, 2):
        dicom.write_file(
            tmp_path / f"f{number}.dcm",
            np.full((4, 4), number, np.int16),
            SeriesInstanceUID="1.2.9",
            InstanceNumber=number,
        )
    with pytest.warns(UserWarning, match="ordered by InstanceNumber"):
        (series,) = find_dicom_series(tmp_path)
    assert [os.path.basename(f) for f in series.files] == ["f1.dcm", "f2.dcm", "f3.dcm"]
