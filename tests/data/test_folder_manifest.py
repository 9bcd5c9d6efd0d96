"""``mama-monai manifest folder``: a manifest from a plain folder tree, built here from the embedded real CT.

The folder (``own_data``) holds the LIDC-IDRI-0001 CT cut into "patients": a DICOM series, a NIfTI
and an NRRD of nodule-free slices as normals; a NIfTI around the nodule with the radiologists' mask
and one 16-bit PNG slice of the nodule with its mask as abnormals. End to end, the README's four
commands run on it: manifest -> train (tiny, 10 iterations) -> evaluate -> score.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from mama_monai.data import load_demo_ct
from mama_monai.data.folder_manifest import FolderManifestError, build_folder_manifest
from mama_monai.data.manifest import load_manifest
from tests.data.conftest import write_series

NODULE = slice(84, 96)  # slices 86-94 carry the radiologists' outline, 84, 85 and 95 do not
PNG_SLICE = 90


def _nifti(volume: nib.Nifti1Image, zs: slice, path: Path) -> nib.Nifti1Image:
    part = volume.slicer[:, :, zs]
    image = nib.Nifti1Image(np.asarray(part.dataobj).astype(np.int16), part.affine)
    nib.save(image, path)
    return image


@pytest.fixture(scope="module")
def own_data(tmp_path_factory) -> Path:
    demo = load_demo_ct()
    ct, mask = nib.load(demo["image"]), nib.load(demo["mask"])
    root = tmp_path_factory.mktemp("own_data")
    normal, abnormal, masks = root / "normal", root / "abnormal", root / "masks"
    for d in (normal, abnormal, masks):
        d.mkdir()
    hu = np.asarray(ct.dataobj)
    write_series(normal / "patient_a", np.transpose(hu[:, :, 20:25], (2, 1, 0)) + 1024, PatientID="A-001")
    _nifti(ct, slice(30, 35), normal / "patient_b.nii.gz")
    _nifti(ct, slice(40, 45), root / "c.nii.gz")
    sitk.WriteImage(sitk.ReadImage(str(root / "c.nii.gz")), str(normal / "patient_c.nrrd"))
    (root / "c.nii.gz").unlink()
    (normal / "notes.txt").write_text("not an image")
    _nifti(ct, NODULE, abnormal / "nodule_ct.nii.gz")
    part = mask.slicer[:, :, NODULE]
    nib.save(nib.Nifti1Image((np.asarray(part.dataobj) > 0).astype(np.uint8), part.affine), masks / "nodule_ct_mask.nii.gz")
    png = np.clip(hu[:, :, PNG_SLICE].T + 1024, 0, 65535).astype(np.uint16)  # rows = y: the file's own layout
    Image.fromarray(png).save(abnormal / "nodule_slice.png")
    outline = (np.asarray(mask.dataobj)[:, :, PNG_SLICE].T > 0).astype(np.uint8) * 255
    Image.fromarray(outline).save(masks / "nodule_slice_seg.png")
    return root


def _build(own_data: Path, out: Path, **kwargs):
    return build_folder_manifest(
        out, own_data / "normal", own_data / "abnormal", own_data / "masks", **{"test_fraction": 0.34, **kwargs}
    )


def test_cases_labels_groups_and_counts(own_data, tmp_path):
    manifest = _build(own_data, tmp_path / "m.json")
    loaded = load_manifest(tmp_path / "m.json")  # written and valid
    assert [c.case_id for c in loaded.cases] == [c.case_id for c in manifest.cases]
    by_image: dict[str, list] = {}
    for case in manifest.cases:
        by_image.setdefault(case.image, []).append(case)
    assert sorted(by_image) == [
        "abnormal/nodule_ct.nii.gz", "abnormal/nodule_slice.png",
        "normal/patient_a", "normal/patient_b.nii.gz", "normal/patient_c.nrrd",
    ]  # fmt: skip
    for name in ("normal/patient_a", "normal/patient_b.nii.gz", "normal/patient_c.nrrd"):
        cases = by_image[name]
        assert [c.slice_index for c in cases] == list(range(5)) and {c.label for c in cases} == {0}
        assert len({c.group for c in cases}) == 1  # one patient, one group
    # the nodule volume's slice labels are the radiologists' mask, slice by slice (independent reference: nibabel)
    reference = (np.asarray(nib.load(own_data / "masks" / "nodule_ct_mask.nii.gz").dataobj) > 0).any((0, 1)).astype(int)
    nodule = by_image["abnormal/nodule_ct.nii.gz"]
    assert [c.label for c in nodule] == reference.tolist() == [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]
    assert {c.mask for c in nodule} == {"masks/nodule_ct_mask.nii.gz"} and {c.split for c in nodule} == {"test"}
    (png,) = by_image["abnormal/nodule_slice.png"]
    assert (png.label, png.mask, png.slice_index, png.split) == (1, "masks/nodule_slice_seg.png", None, "test")
    # the DICOM PatientID keeps the series' cases together but is stored only as a hash
    assert by_image["normal/patient_a"][0].group.startswith("patient-") and "A-001" not in (tmp_path / "m.json").read_text()
    normal_splits = {name: by_image[name][0].split for name in by_image if name.startswith("normal/")}
    assert sorted(normal_splits.values()) == ["test", "train", "train"]  # 0.34 of 3 groups held out
    assert manifest.description.startswith("mama-monai manifest folder: 3 normal inputs, 2 abnormal inputs (2 masks); 28 cases")
    assert "1 other files ignored" in manifest.description


def test_folds_keep_each_patient_in_one_fold(own_data, tmp_path):
    manifest = _build(own_data, tmp_path / "m.json", test_fraction=None, folds=3, group_by="series")
    folds = {}
    for case in manifest.cases:
        if case.split is None:
            folds.setdefault(case.image, set()).add(case.fold)
    assert sorted(len(f) for f in folds.values()) == [1, 1, 1] and set().union(*folds.values()) == {0, 1, 2}
    assert manifest.num_folds == 3
    with pytest.raises(FolderManifestError, match="--folds 4 needs at least 4 normal groups"):
        _build(own_data, tmp_path / "m4.json", test_fraction=None, folds=4)


def _copy(own_data: Path, where: Path) -> Path:
    import shutil

    shutil.copytree(own_data, where)
    return where


def test_ambiguous_and_unmatched_masks_are_refused_naming_the_files(own_data, tmp_path):
    data = _copy(own_data, tmp_path / "two_masks")
    extra = data / "masks" / "nodule_ct_seg.nii.gz"
    extra.write_bytes((data / "masks" / "nodule_ct_mask.nii.gz").read_bytes())
    with pytest.raises(FolderManifestError, match=r"has two masks, .*nodule_ct_mask\.nii\.gz.* and .*nodule_ct_seg\.nii\.gz"):
        _build(data, tmp_path / "m.json")
    extra.rename(data / "masks" / "someone_else.nii.gz")
    with pytest.raises(FolderManifestError, match=r"1 mask\(s\) fit no abnormal input by name: .*someone_else\.nii\.gz"):
        _build(data, tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()


def test_abnormal_volume_without_mask_is_refused(own_data, tmp_path):
    data = _copy(own_data, tmp_path / "no_mask")
    (data / "masks" / "nodule_ct_mask.nii.gz").unlink()
    with pytest.raises(FolderManifestError, match=r"abnormal volume .*nodule_ct\.nii\.gz.* has no mask"):
        _build(data, tmp_path / "m.json")


def test_folder_of_two_series_is_refused(tmp_path):
    rows, cols = np.meshgrid(np.arange(8), np.arange(6), indexing="ij")
    vol = np.stack([(rows * 10 + cols + k).astype(np.int16) for k in range(3)])
    write_series(tmp_path / "normal" / "mixed", vol)
    write_series(tmp_path / "normal" / "mixed", vol, seed=1)
    with pytest.raises(FolderManifestError, match=r"holds 2 DICOM series .* expected one series per folder"):
        build_folder_manifest(tmp_path / "m.json", tmp_path / "normal")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"folds": 3, "test_fraction": 0.2}, "not both"),
        ({"test_fraction": 1.5}, r"--test-fraction must be in \(0, 1\), got 1.5"),
        ({"group_by": "study"}, "--group-by must be one of patient, series, file, got 'study'"),
        ({"extensions": ["nii"]}, r"--extensions must start with a dot .*\['nii'\]"),
    ],
)
def test_bad_arguments_name_the_parameter_and_value(own_data, tmp_path, kwargs, message):
    with pytest.raises(FolderManifestError, match=message):
        build_folder_manifest(tmp_path / "m.json", own_data / "normal", **kwargs)


def test_readme_four_commands_end_to_end(own_data, tmp_path):
    """manifest folder -> train -> evaluate -> score, through the CLI, as README's "Your own data" shows."""
    from mama_monai.cli import main
    from tests.bundle.conftest import TINY

    m, run, ev, sc = (str(tmp_path / n) for n in ("own.json", "run", "eval", "scores"))
    assert main(["manifest", "folder", m, "--normal", str(own_data / "normal"), "--abnormal", str(own_data / "abnormal"),
                 "--masks", str(own_data / "masks"), "--test-fraction", "0.34"]) == 0  # fmt: skip
    assert main(["train", "--output", run, "--device", "cpu", "--data#manifest", m,
                 "--training#iterations", "10", "--training#val_interval", "10", *TINY]) == 0  # fmt: skip
    assert main(["evaluate", "--model", f"{run}/model.pt", "--output", ev, "--device", "cpu"]) == 0
    report = json.loads(Path(ev, "report.json").read_text())
    test_cases = [c for c in load_manifest(m).cases if c.split == "test"]
    assert report["n_cases"] == len(test_cases) == 5 + 12 + 1 and report["n_failed"] == 0
    inputs = [str(own_data / "abnormal" / "nodule_ct.nii.gz"), str(own_data / "abnormal" / "nodule_slice.png"),
              str(own_data / "normal" / "patient_c.nrrd"), str(own_data / "normal" / "patient_a")]  # fmt: skip
    assert main(["score", "--model", f"{run}/model.pt", "--input", *inputs, "--output", sc]) == 0
    cases = json.loads(Path(sc, "scores.json").read_text())["cases"]
    assert [c["num_slices"] for c in cases] == [12, 1, 5, 5]
    ct = nib.load(own_data / "abnormal" / "nodule_ct.nii.gz")
    ct_map = nib.load(Path(sc) / cases[0]["anomaly_map"])
    assert ct_map.shape == ct.shape
    np.testing.assert_allclose(ct_map.affine, ct.affine, atol=1e-4)
    nrrd = sitk.ReadImage(str(own_data / "normal" / "patient_c.nrrd"))
    nrrd_map = sitk.ReadImage(str(Path(sc) / cases[2]["anomaly_map"]))
    assert nrrd_map.GetSize() == nrrd.GetSize()
    np.testing.assert_allclose(nrrd_map.GetOrigin(), nrrd.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(nrrd_map.GetDirection(), nrrd.GetDirection(), atol=1e-6)


def test_dicom_files_are_one_series_whatever_the_extensions(tmp_path):
    """Slices named *.dcm stay one series input even when --extensions names .dcm (recognised by content)."""
    rows, cols = np.meshgrid(np.arange(8), np.arange(6), indexing="ij")
    vol = np.stack([(rows * 10 + cols + k).astype(np.int16) for k in range(3)])
    for patient in ("p1", "p2"):
        write_series(tmp_path / "normal" / patient, vol, shuffle=False, PatientID=patient)
    manifest = build_folder_manifest(tmp_path / "m.json", tmp_path / "normal", extensions=[".dcm"], test_fraction=0.5)
    assert sorted({(c.image, c.slice_index) for c in manifest.cases}) == [
        (p, k) for p in ("p1", "p2") for k in range(3)
    ]  # paths relative to the manifest's root, here the --normal folder itself
