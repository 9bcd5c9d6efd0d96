"""convert() and ``mama-monai convert`` end to end on generated DICOM series and real files."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from mama_monai.cli import main
from mama_monai.data.convert import convert


@pytest.fixture
def series(tmp_path, dicom, ct_volume):
    c, s = np.cos(0.2), np.sin(0.2)
    dicom.write_series(tmp_path / "ct", ct_volume, orientation=(c, s, 0.0, -s, c, 0.0), seed=8)
    return tmp_path / "ct"


def test_cli_convert_keeps_simpleitk_geometry_and_hounsfield_units(tmp_path, series, ct_volume, dicom, capsys):
    output = tmp_path / "ct.nii.gz"
    assert main(["convert", str(series), str(output)]) == 0
    assert "wrote" in capsys.readouterr().out
    written = nib.load(output)
    reference = sitk.ReadImage(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(series)))
    assert written.shape == reference.GetSize()
    assert np.allclose(written.affine, dicom.ras_affine_from_sitk(reference), atol=1e-4)
    assert np.array_equal(written.get_fdata(), sitk.GetArrayFromImage(reference).T)
    assert np.array_equal(written.get_fdata()[:, :, 0], ct_volume[0].T.astype(float) - 1024)  # HU
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []  # atomic write left nothing


def test_convert_with_preset_shows_the_model_input_on_the_same_field_of_view(tmp_path, series):
    plain = convert(series, tmp_path / "plain.nii.gz")
    model = convert(series, tmp_path / "model.nii.gz", preset="ct_lung", spatial_size=(16, 12))
    written = nib.load(tmp_path / "model.nii.gz")
    assert written.shape == (16, 12, 6) and model.shape == (1, 16, 12, 6)
    data = written.get_fdata()
    assert data.min() >= 0.0 and data.max() <= 1.0

    def centre(affine, shape):
        return (affine @ np.array([*(np.array(shape) - 1) / 2, 1.0]))[:3]

    assert np.allclose(centre(written.affine, written.shape), centre(plain.affine.numpy(), plain.shape[1:]), atol=1e-4)


def test_convert_with_preset_on_the_original_grid(tmp_path, series):
    plain = convert(series, tmp_path / "plain.nii.gz")
    convert(series, tmp_path / "orig.nii.gz", preset="ct_lung", spatial_size=(16, 12), grid="original")
    written = nib.load(tmp_path / "orig.nii.gz")
    assert written.shape == tuple(plain.shape[1:])
    assert np.allclose(written.affine, plain.affine.numpy(), atol=1e-5)


def test_convert_single_radiograph_with_cxr_preset(tmp_path, dicom):
    output = tmp_path / "cr.nii"
    assert (
        main(
            [
                "convert",
                dicom.testdata("dicomdirtests/77654033/CR1/6154"),
                str(output),
                "--preset",
                "cxr",
                "--spatial-size",
                "8",
                "8",
            ]
        )
        == 0
    )
    assert nib.load(output).shape == (8, 8)  # one frame, channel and singleton slice squeezed on write


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path, dicom, ct_volume, capsys):
    dicom.write_series(tmp_path / "two", ct_volume, series_uid="1.2.3.1")
    dicom.write_series(tmp_path / "two", ct_volume[:2], series_uid="1.2.3.2", seed=3)
    assert main(["convert", str(tmp_path / "two"), str(tmp_path / "o.nii.gz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("mama-monai convert: error: ") and "1.2.3.1" in err and "1.2.3.2" in err
    assert main(["convert", str(tmp_path / "two"), str(tmp_path / "o.nii.gz"), "--series-uid", "1.2.3.2"]) == 0
    assert nib.load(tmp_path / "o.nii.gz").shape == (24, 20, 2)


@pytest.mark.parametrize(
    "args, message",
    [
        (["{in}", "{tmp}/o.png"], "output_path must end with .nii or .nii.gz"),
        (["{in}", "{tmp}/o.nii.gz", "--preset", "ct_bone"], "preset must be one of ['ct_lung'"),
        (["{tmp}/absent", "{tmp}/o.nii.gz"], "absent: no such file or folder"),
        (["{in}", "{tmp}/no/such/dir/o.nii.gz"], "does not exist"),
    ],
)
def test_cli_rejects_bad_arguments(tmp_path, series, capsys, args, message):
    argv = ["convert", *(a.format(**{"in": str(series), "tmp": str(tmp_path)}) for a in args)]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_requires_a_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
