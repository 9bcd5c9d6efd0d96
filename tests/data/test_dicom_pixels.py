"""Single DICOM files: LUTs, MONOCHROME1, compression, bad files (mama_monai.data.dicom_pixels)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from mama_monai.data.dicom_pixels import read_dicom_file
from mama_monai.data.errors import ImageLoadError, UnsupportedTransferSyntaxError


def _array(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image)


def _radiograph(rows: int = 32, cols: int = 40) -> np.ndarray:
    """Stored values of a MONOCHROME1 radiograph: air (outside the body) has the largest values."""
    pixels = np.full((rows, cols), 3800, np.uint16)  # air: displayed white in MONOCHROME1 stored sense
    pixels[8:24, 10:30] = 1200  # body: lower stored values
    return pixels


def test_monochrome1_comes_out_with_air_dark(tmp_path, dicom):
    path = dicom.write_file(
        tmp_path / "cr.dcm",
        _radiograph(),
        Modality="CR",
        PhotometricInterpretation="MONOCHROME1",
        BitsStored=12,
        HighBit=11,
        ImagerPixelSpacing=[0.2, 0.2],
    )
    out = _array(read_dicom_file(path))[0]
    assert out[0, 0] < out[16, 20]  # air darker than body
    assert out[0, 0] == pytest.approx(4095 - 3800) and out[16, 20] == pytest.approx(4095 - 1200)


def test_real_monochrome1_radiograph_inverted_over_its_value_range(dicom):
    path = dicom.testdata("dicomdirtests/77654033/CR1/6154")
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1" and ds.Modality == "CR"
    out = _array(read_dicom_file(path))[0]
    stored = ds.pixel_array.astype(float)
    assert np.corrcoef(out.ravel(), stored.ravel())[0, 1] < -0.99  # brightest stored -> darkest out
    windowed = pydicom.pixels.apply_voi_lut(pydicom.pixels.apply_modality_lut(ds.pixel_array, ds), ds)
    lo, hi = 0 * 0.684 + 200, 4095 * 0.684 + 200  # modality range of 12-bit stored values
    assert np.allclose(out, lo + hi - windowed, atol=1e-3)


def test_gdcm_fallback_gives_the_pydicom_result(dicom, monkeypatch):
    path = dicom.testdata("dicomdirtests/77654033/CR1/6154")
    expected = _array(read_dicom_file(path))

    def no_decoder(self):
        raise RuntimeError("Unable to decompress: all plugins are missing dependencies")

    monkeypatch.setattr(pydicom.Dataset, "pixel_array", property(no_decoder))
    assert np.allclose(_array(read_dicom_file(path)), expected)


def test_rescale_gives_hounsfield_units_and_no_window_for_ct(tmp_path, dicom):
    pixels = np.array([[0, 1024], [2048, 24]], np.int16)
    path = dicom.write_file(
        tmp_path / "ct.dcm", pixels, RescaleSlope=1.0, RescaleIntercept=-1024.0, WindowCenter=40, WindowWidth=80
    )
    assert np.array_equal(_array(read_dicom_file(path))[0], [[-1024, 0], [1024, -1000]])


def test_window_applied_for_dx_and_can_be_switched_off(tmp_path, dicom):
    pixels = np.array([[0, 1000], [2000, 4000]], np.uint16)
    path = dicom.write_file(tmp_path / "dx.dcm", pixels, Modality="DX", WindowCenter=2000, WindowWidth=2000)
    windowed = _array(read_dicom_file(path))[0]
    assert windowed[0, 0] == windowed[0, 1] == 0  # below the window
    assert windowed[1, 1] == 65535  # above the window: top of the 16-bit output range
    raw = _array(read_dicom_file(path, apply_voi_lut=False))[0]
    assert np.array_equal(raw, pixels)


def test_real_ct_file_matches_simpleitk_values_and_geometry(dicom):
    path = dicom.testdata("CT_small.dcm")
    ours, reference = read_dicom_file(path), sitk.ReadImage(path)
    assert np.array_equal(_array(ours), _array(reference))
    assert ours.GetOrigin() == reference.GetOrigin() and ours.GetSpacing() == reference.GetSpacing()
    assert ours.GetMetaData("mama_modality") == "CT"
    assert not any("0010|" in key for key in ours.GetMetaDataKeys())  # no patient module copied


@pytest.mark.parametrize(
    "compressed",
    ["MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm", "MR_small_RLE.dcm"],
)
def test_lossless_compressed_files_decode_like_the_uncompressed_one(dicom, compressed):
    expected = _array(read_dicom_file(dicom.testdata("MR_small.dcm")))
    assert np.array_equal(_array(read_dicom_file(dicom.testdata(compressed))), expected)


def test_jpeg_lossless_rgb_decoded_by_gdcm(dicom):
    image = read_dicom_file(dicom.testdata("SC_rgb_jpeg_gdcm.dcm"))
    assert image.GetNumberOfComponentsPerPixel() == 3 and image.GetSize() == (100, 100, 1)


def test_multiframe_file_gives_one_slice_per_frame(dicom):
    image = read_dicom_file(dicom.testdata("rtdose.dcm"))
    assert image.GetSize() == (10, 10, 15)


def test_unknown_transfer_syntax_names_syntax_and_file(tmp_path, dicom):
    ds = pydicom.dcmread(dicom.testdata("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.2.826.0.1.3680043.8.498.99"
    path = tmp_path / "forged.dcm"
    ds.save_as(path, implicit_vr=False, little_endian=True, enforce_file_format=False)
    with pytest.raises(UnsupportedTransferSyntaxError) as err:
        read_dicom_file(path)
    message = str(err.value)
    assert str(path) in message
    assert (
        "cannot decode pixel data with transfer syntax 'unknown transfer syntax' (1.2.826.0.1.3680043.8.498.99)"
        in message
    )
    assert err.value.transfer_syntax_uid == "1.2.826.0.1.3680043.8.498.99"


def test_known_but_undecodable_syntax_is_named(tmp_path, dicom, monkeypatch):
    path = dicom.testdata("MR_small_jpeg_ls_lossless.dcm")
    monkeypatch.setattr(sitk, "ReadImage", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no GDCM")))

    def no_plugin(self):  # and no pydicom plugin for JPEG-LS (highdicom installs pyjpegls, which decodes it)
        raise NotImplementedError("no JPEG-LS plugin")

    monkeypatch.setattr(pydicom.Dataset, "pixel_array", property(no_plugin))
    with pytest.raises(
        UnsupportedTransferSyntaxError, match=r"'JPEG-LS Lossless Image Compression' \(1.2.840.10008.1.2.4.80\)"
    ):
        read_dicom_file(path)


def test_truncated_real_file_is_reported(dicom):
    path = dicom.testdata("MR_truncated.dcm")
    with pytest.raises(ImageLoadError, match=r"truncated or corrupt pixel data") as err:
        read_dicom_file(path)
    assert path in str(err.value)


def test_file_cut_in_its_header_is_reported(tmp_path, dicom):
    source = open(dicom.testdata("CT_small.dcm"), "rb").read()
    path = tmp_path / "cut.dcm"
    path.write_bytes(source[:700])
    with pytest.raises(ImageLoadError, match=r"cut.dcm: (truncated or corrupt|DICOM file holds no pixel data)"):
        read_dicom_file(path)
