"""DICOM SEG, Parametric Map and SR written by ``score`` for a real CT series, read back independently.

The series is five real LIDC-IDRI-0001 slices with their original headers
(``tests/clinical/lidc_series``, PROVENANCE.md there). The model's reconstruction is exactly 0,
so the map is the smoothed square of the lung-window CT: a real anatomical picture whose
thresholded region is neither empty nor full. Every object is checked with ``dciodvfy``
(dicom3tools) and read back with highdicom / pydicom; the NIfTI map with SimpleITK.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

import mama_monai
from mama_monai.clinical import SourceFrameError, map_to_frames, read_source_headers
from mama_monai.data import load_demo_ct
from mama_monai.workflows.scoring import score_cases
from tests.model_files import tiny_model_file

SERIES = Path(__file__).parent / "lidc_series"
THRESHOLD = 0.3
OBJECTS = ("seg.dcm", "parametric_map.dcm", "sr.dcm")


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """The series (case_001) and a NIfTI crop of the demo CT (case_002), scored with default settings."""
    root = tmp_path_factory.mktemp("dicom_out")
    scoring = {"sigma": 1.0, "reduction": "max"}
    model = tiny_model_file(root / "model.pt", THRESHOLD, spatial_size=(64, 64), scoring=scoring, zero=True)
    nifti = root / "ct.nii.gz"
    nib.save(nib.load(load_demo_ct()["image"]).slicer[:, :, 88:90], nifti)
    report = score_cases(model, [SERIES, nifti], root / "scores")
    return {"out": root / "scores", "report": report, "model": model, "root": root}


def _sources() -> dict[str, pydicom.Dataset]:
    return {ds.SOPInstanceUID: ds for ds in (pydicom.dcmread(p) for p in sorted(SERIES.glob("*.dcm")))}


def _dciodvfy_errors(path: Path) -> list[str]:
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy is not installed (Debian package dicom3tools; .ci/run installs it)")
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]


@pytest.mark.parametrize("name", OBJECTS)
def test_every_object_passes_dciodvfy(scored, name):
    assert _dciodvfy_errors(scored["out"] / "case_001" / "dicom" / name) == []


def test_seg_frames_lie_exactly_on_the_source_slices(scored):
    seg = hd.seg.segread(scored["out"] / "case_001" / "dicom" / "seg.dcm")
    sources = _sources()
    assert seg.SegmentationType == "BINARY" and seg.number_of_frames == len(sources) == 5
    assert seg.FrameOfReferenceUID == next(iter(sources.values())).FrameOfReferenceUID
    shared = seg.SharedFunctionalGroupsSequence[0]
    referenced = []
    for frame in seg.PerFrameFunctionalGroupsSequence:
        uid = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        source = sources[uid]
        referenced.append(uid)
        np.testing.assert_allclose(
            [float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient],
            [float(v) for v in source.ImagePositionPatient], atol=1e-4,
        )  # fmt: skip
        np.testing.assert_allclose(
            [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient],
            [float(v) for v in source.ImageOrientationPatient], atol=1e-6,
        )  # fmt: skip
        np.testing.assert_allclose(
            [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing], [float(v) for v in source.PixelSpacing]
        )
    assert sorted(referenced) == sorted(sources)  # every source slice exactly once


def test_seg_pixels_equal_the_thresholded_nifti_map_and_the_mask(scored):
    case = scored["out"] / "case_001"
    written = sitk.ReadImage(str(case / "anomaly_map.nii.gz"))  # SimpleITK, not our reader: (z, y, x), LPS
    values = sitk.GetArrayFromImage(written)
    assert values.dtype == np.float32
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(case / "anomaly_mask.nii.gz")))
    np.testing.assert_array_equal(mask, (values >= np.float32(THRESHOLD)).astype(np.uint8))
    seg = hd.seg.segread(case / "dicom" / "seg.dcm")
    sources = _sources()
    frames = seg.pixel_array
    for number, frame in enumerate(seg.PerFrameFunctionalGroupsSequence):
        source = sources[frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID]
        i, j, k = written.TransformPhysicalPointToIndex([float(v) for v in source.ImagePositionPatient])
        assert (i, j) == (0, 0)  # the source's first pixel is the map's first voxel of that slice
        # the direction is identity in both (axial, LPS): rows = y, columns = x
        np.testing.assert_array_equal(frames[number], mask[k])
    positive = frames.mean()
    assert 0.05 < positive < 0.95, positive  # a real region: neither empty nor the whole image


def test_parametric_map_holds_the_map_values_and_the_threshold(scored):
    case = scored["out"] / "case_001"
    written = sitk.ReadImage(str(case / "anomaly_map.nii.gz"))
    values = sitk.GetArrayFromImage(written).astype(np.float64)
    pm = pydicom.dcmread(case / "dicom" / "parametric_map.dcm")
    mapping = pm.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    slope = float(mapping.RealWorldValueSlope)
    assert float(mapping.RealWorldValueIntercept) == 0.0 and mapping.MeasurementUnitsCodeSequence[0].CodeValue == "1"
    assert f"threshold {THRESHOLD:.6g}" in mapping.LUTExplanation
    sources = _sources()
    stored = pm.pixel_array.astype(np.float64)
    for number, frame in enumerate(pm.PerFrameFunctionalGroupsSequence):
        source = sources[frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID]
        k = written.TransformPhysicalPointToIndex([float(v) for v in source.ImagePositionPatient])[2]
        np.testing.assert_allclose(stored[number] * slope, values[k], atol=slope / 2 + 1e-9)
    voi = pm.SharedFunctionalGroupsSequence[0].FrameVOILUTSequence[0]
    assert float(voi.WindowCenter) * slope == pytest.approx(THRESHOLD, rel=1e-4)


def _content(items, out=None) -> list[tuple[str, object]]:
    """(concept meaning, value) of every SR content item, depth first."""
    out = [] if out is None else out
    for item in items:
        name = item.ConceptNameCodeSequence[0].CodeMeaning if "ConceptNameCodeSequence" in item else ""
        value = {
            "NUM": lambda: float(item.MeasuredValueSequence[0].NumericValue),
            "CODE": lambda: item.ConceptCodeSequence[0].CodeMeaning,
            "IMAGE": lambda: item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID,
            "UIDREF": lambda: item.UID,
            "TEXT": lambda: item.TextValue,
        }.get(item.ValueType, lambda: None)()
        out.append((name, value))
        if "ContentSequence" in item:
            _content(item.ContentSequence, out)
    return out


def test_sr_reports_score_threshold_finding_and_references_the_seg_and_source(scored):
    case_dir = scored["out"] / "case_001" / "dicom"
    case = json.loads((scored["out"] / "scores.json").read_text())["cases"][0]
    sr = pydicom.dcmread(case_dir / "sr.dcm")
    seg = pydicom.dcmread(case_dir / "seg.dcm")
    content = dict(_content(sr.ContentSequence))
    assert content["Anomaly score"] == pytest.approx(case["score"], rel=1e-9)
    assert content["Anomaly threshold"] == pytest.approx(THRESHOLD)
    assert content["Finding"] == ("Abnormal" if case["label"] else "Normal")
    assert content["Referenced Segment"] == seg.SOPInstanceUID
    evidence = {
        item.ReferencedSOPInstanceUID
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for item in series.ReferencedSOPSequence
    }
    pm = pydicom.dcmread(case_dir / "parametric_map.dcm")
    assert evidence == set(_sources()) | {seg.SOPInstanceUID, pm.SOPInstanceUID}
    sources = _sources()
    assert content["Source Series for Segmentation"] == next(iter(sources.values())).SeriesInstanceUID
    assert content["Algorithm Version"] == f"{mama_monai.__version__} model {case['model_sha256']}"
    assert [i.CodingSchemeDesignator for i in sr.CodingSchemeIdentificationSequence] == ["99MAMAMONAI"]
    # the score's source image is the slice of the maximum: map slice max_slice, found in world space
    written = sitk.ReadImage(str(scored["out"] / "case_001" / "anomaly_map.nii.gz"))
    top = sources[content["Source of Measurement"]]
    assert written.TransformPhysicalPointToIndex([float(v) for v in top.ImagePositionPatient])[2] == case["max_slice"]


@pytest.mark.parametrize("name", OBJECTS)
def test_derived_objects_keep_patient_and_study_and_copy_nothing_else(scored, name):
    ds = pydicom.dcmread(scored["out"] / "case_001" / "dicom" / name)
    source = next(iter(_sources().values()))
    assert (ds.StudyInstanceUID, ds.PatientID) == (source.StudyInstanceUID, source.PatientID)
    assert ds.SeriesInstanceUID != source.SeriesInstanceUID and ds.SOPInstanceUID not in _sources()
    assert ds.Manufacturer == "mama-monai"
    if name != "sr.dcm":
        assert ds.SoftwareVersions == mama_monai.__version__
        assert ds.get("BurnedInAnnotation", "NO") == "NO"
    private = [str(e.tag) for e in ds.iterall() if e.tag.is_private]
    assert private == []  # the source carries CTP private tags (0013,xxxx)
    for keyword in ("KVP", "ConvolutionKernel", "DerivationDescription", "ImageComments"):
        assert keyword not in ds


def test_series_and_instance_uids_are_new_and_distinct(scored):
    objects = [pydicom.dcmread(scored["out"] / "case_001" / "dicom" / name) for name in OBJECTS]
    assert len({ds.SeriesInstanceUID for ds in objects}) == 3
    assert len({ds.SOPInstanceUID for ds in objects}) == 3


def test_nifti_input_gets_nifti_outputs_only(scored):
    case = next(c for c in scored["report"]["cases"] if c["case"] == "case_002")
    assert case["dicom"] is None and not (scored["out"] / "case_002" / "dicom").exists()
    amap = nib.load(scored["out"] / "case_002" / "anomaly_map.nii.gz")
    mask = nib.load(scored["out"] / "case_002" / "anomaly_mask.nii.gz")
    assert mask.get_data_dtype() == np.uint8 and np.allclose(mask.affine, amap.affine)
    np.testing.assert_array_equal(np.asanyarray(mask.dataobj), np.asarray(amap.dataobj) >= np.float32(THRESHOLD))


def test_an_empty_region_still_gives_a_valid_seg_and_no_dicom_output_gives_none(scored, caplog):
    model = tiny_model_file(scored["root"] / "high.pt", 1e3, spatial_size=(64, 64), zero=True)
    caplog.set_level(logging.INFO)
    report = score_cases(model, [SERIES], scored["root"] / "empty")
    assert [r.getMessage() for r in caplog.records if r.name.startswith("highdicom")] == []  # no per-module chatter
    assert report["cases"][0]["label_name"] == "normal"
    seg_path = scored["root"] / "empty" / "case_001" / "dicom" / "seg.dcm"
    seg = hd.seg.segread(seg_path)
    assert seg.number_of_frames == 5 and not seg.pixel_array.any()
    assert _dciodvfy_errors(seg_path) == []
    sr = dict(_content(pydicom.dcmread(seg_path.with_name("sr.dcm")).ContentSequence))
    assert sr["Finding"] == "Normal"
    report = score_cases(model, [SERIES], scored["root"] / "none", dicom_output=False)
    assert report["cases"][0]["dicom"] is None and not (scored["root"] / "none" / "case_001" / "dicom").exists()


def test_a_map_off_the_source_grid_is_refused_not_resampled():
    headers = read_source_headers(SERIES, None)
    volume = np.zeros((128, 128, 5), np.float32)
    affine = np.diag([-2.8125, -2.8125, 2.5, 1.0])
    first = [float(v) for v in headers[0].ImagePositionPatient]
    affine[:3, 3] = [-first[0], -first[1], first[2]]  # LPS -> RAS
    assert map_to_frames(volume, affine, headers).shape == (5, 128, 128)
    affine[0, 3] += 2.8125 / 2  # half a voxel off
    with pytest.raises(SourceFrameError, match="does not lie on the map's voxel grid"):
        map_to_frames(volume, affine, headers)


def test_seg_keeps_a_frame_for_every_source_slice_even_where_the_region_is_empty():
    from mama_monai.clinical.dicom_outputs import CaseSummary, build_seg

    headers = read_source_headers(SERIES, None)
    mask = np.zeros((5, 128, 128), bool)
    mask[2, 60:70, 50:55] = True  # the region lies on the middle slice only
    seg = build_seg(headers, mask, CaseSummary(1.0, 0.5, "anomalous", 2, "0" * 12))
    assert seg.NumberOfFrames == 5
    by_source = {
        f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID: seg.pixel_array[i]
        for i, f in enumerate(seg.PerFrameFunctionalGroupsSequence)
    }
    assert [int(by_source[h.SOPInstanceUID].sum()) for h in headers] == [0, 0, 50, 0, 0]


def test_frames_follow_each_pixel_to_its_voxel_with_non_square_pixels():
    # known answer: a volume whose value encodes its voxel index; rows 2 mm apart, columns 3 mm apart
    headers = read_source_headers(SERIES, None)
    for ds in headers:
        ds.PixelSpacing, ds.Rows, ds.Columns = [2.0, 3.0], 6, 4
    first = [float(v) for v in headers[0].ImagePositionPatient]
    i, j, k = np.meshgrid(np.arange(4), np.arange(6), np.arange(5), indexing="ij")
    volume = (i * 10000 + j * 100 + k).astype(np.float64)  # (W = columns, H = rows, slices)
    affine = np.diag([-3.0, -2.0, 2.5, 1.0])  # i along the row (LPS +x), j along the column (+y), RAS signs
    affine[:3, 3] = [-first[0], -first[1], first[2]]
    frames = map_to_frames(volume, affine, headers)
    rows, columns = np.meshgrid(np.arange(6), np.arange(4), indexing="ij")
    for n in range(5):
        np.testing.assert_array_equal(frames[n], columns * 10000 + rows * 100 + n)


def test_a_source_the_objects_cannot_be_built_for_is_still_scored(scored, tmp_path):
    # a projection image without ImagePositionPatient / Frame of Reference (here: a real CT slice stripped
    # of them, called DX): highdicom refuses it; the case is scored, the reason in its warnings
    ds = pydicom.dcmread(next(iter(sorted(SERIES.glob("*.dcm")))))
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "FrameOfReferenceUID", "SliceLocation"):
        delattr(ds, keyword)
    ds.Modality, ds.SOPClassUID = "DX", "1.2.840.10008.5.1.4.1.1.1.1"
    ds.save_as(tmp_path / "dx.dcm")
    report = score_cases(scored["model"], [tmp_path / "dx.dcm"], tmp_path / "out", force=True)
    assert report["failures"] == [] and report["cases"][0]["dicom"] is None
    assert any(w.startswith("no DICOM outputs: ") for w in report["cases"][0]["warnings"]), report["cases"][0]["warnings"]
    assert (tmp_path / "out" / "case_001" / "anomaly_mask.nii.gz").is_file()


@pytest.mark.parametrize("orientation", [(1.0, 0.0, 0.0, 0.0, 0.0, -1.0), (0.866025, 0.5, 0.0, -0.5, 0.866025, 0.0)])
def test_seg_matches_the_mask_pixel_by_pixel_in_world_space_for_coronal_and_oblique_series(scored, tmp_path, orientation):
    # the real slices' pixels written as a coronal / in-plane rotated series with non-square pixels; every SEG
    # pixel is compared with the mask voxel SimpleITK finds at that pixel's patient position
    from tests.data.conftest import write_series

    stored = np.stack([pydicom.dcmread(p).pixel_array for p in sorted(SERIES.glob("*.dcm"))[:3]])[:, ::4, ::4]
    write_series(tmp_path / "series", stored.astype(np.int16), spacing=(3.0, 2.0, 4.0), orientation=orientation, seed=5)
    score_cases(scored["model"], [tmp_path / "series"], tmp_path / "out", force=True)
    mask_image = sitk.ReadImage(str(tmp_path / "out" / "case_001" / "anomaly_mask.nii.gz"))
    mask = sitk.GetArrayViewFromImage(mask_image)
    seg = hd.seg.segread(tmp_path / "out" / "case_001" / "dicom" / "seg.dcm")
    sources = {ds.SOPInstanceUID: ds for ds in (pydicom.dcmread(p) for p in (tmp_path / "series").iterdir())}
    checked = 0
    for number, frame in enumerate(seg.PerFrameFunctionalGroupsSequence):
        source = sources[frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID]
        position = np.array([float(v) for v in source.ImagePositionPatient])
        row_dir, col_dir = np.array(orientation[:3]), np.array(orientation[3:])
        dy, dx = (float(v) for v in source.PixelSpacing)
        for r in range(int(source.Rows)):
            for c in range(int(source.Columns)):
                i, j, k = mask_image.TransformPhysicalPointToIndex(list(position + c * dx * row_dir + r * dy * col_dir))
                assert seg.pixel_array[number, r, c] == mask[k, j, i], (number, r, c)
                checked += 1
    assert checked == 3 * stored.shape[1] * stored.shape[2] and 0 < seg.pixel_array.mean() < 1


def test_a_single_dicom_file_gets_a_one_frame_seg_on_that_instance(scored, tmp_path):
    source = pydicom.dcmread(SERIES / "slice_3.dcm")
    report = score_cases(scored["model"], [SERIES / "slice_3.dcm"], tmp_path / "out")
    folder = tmp_path / "out" / "case_001" / "dicom"
    assert report["cases"][0]["dicom"] == {k: f"case_001/dicom/{k}.dcm" for k in ("seg", "parametric_map", "sr")}
    seg = hd.seg.segread(folder / "seg.dcm")
    frame = seg.PerFrameFunctionalGroupsSequence[0]
    assert seg.number_of_frames == 1
    assert frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    mask = np.asanyarray(nib.load(tmp_path / "out" / "case_001" / "anomaly_mask.nii.gz").dataobj)
    frame_pixels = seg.pixel_array.reshape(-1, int(seg.Rows), int(seg.Columns))[0]  # one frame: (rows, columns)
    np.testing.assert_array_equal(frame_pixels, mask.reshape(mask.shape[:2]).T)  # (x, y) -> rows, columns
    assert 0 < frame_pixels.mean() < 1
    for name in OBJECTS:
        assert _dciodvfy_errors(folder / name) == []
