"""benchmarks/external_tumours.py and accuracy.labelled_series: the slice rules written before the
run, and the numbers the page reports (known answers on volumes built by hand)."""

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import accuracy, external_tumours  # noqa: E402


def _chest(depth=30, lung_radius=None):
    """A CT volume (W, H, D) in HU: a soft-tissue body (40 HU) with two lungs (-850 HU) whose
    radius per slice is ``lung_radius[k]``, a couch (200 HU) apart from it, air elsewhere."""
    lung_radius = lung_radius if lung_radius is not None else [8] * depth
    x, y = np.mgrid[:64, :64]
    volume = np.full((64, 64, depth), -1000.0)
    for k in range(depth):
        volume[..., k][(x - 32) ** 2 / 26**2 + (y - 30) ** 2 / 20**2 <= 1] = 40.0
        for cx in (20, 44):
            volume[..., k][(x - cx) ** 2 + (y - 30) ** 2 <= lung_radius[k] ** 2] = -850.0
        volume[4:60, 58:62, k] = 200.0  # the couch: above -400 HU, not connected to the body
    return volume


def test_ct_slice_sets_known_answer():
    radius = [8] * 30
    radius[:4] = [2, 2, 3, 4]  # lung pixels 13, 13, 29, 49 per lung against 197 at full size: 7-24.9 %
    radius[4] = 5  # 81 / 197 = 41 %: kept (the rule is >= 25 %)
    image, label = _chest(lung_radius=radius), np.zeros((64, 64, 30), bool)
    label[20:23, 28:32, 10] = label[20:23, 28:32, 11] = True  # a finding on slices 10 and 11
    sets = external_tumours.slice_sets(image, label, spacing_mm=5.0, modality="CT")
    assert sets["anomalous"] == [10, 11]
    # 9 and 12 are 5 mm away (left out), 8 and 13 are 10 mm away (kept); 0-3 are not chest
    assert sets["all"] == [k for k in range(30) if k not in (9, 10, 11, 12)]
    assert sets["primary"] == [k for k in range(4, 30) if k not in (9, 10, 11, 12)]
    assert sets["pixels"] == sorted(sets["primary"] + [10, 11])
    # with 2.5 mm slices the gap of 10 mm leaves out three slices on each side
    thin = external_tumours.slice_sets(image, label, spacing_mm=2.5, modality="CT")
    assert thin["all"] == [k for k in range(30) if not 7 <= k <= 14]


def test_ct_body_is_the_largest_region_filled_so_the_lungs_count_and_the_couch_does_not():
    image = _chest(depth=4)
    body = external_tumours.body_mask(image, "CT")
    assert body[20, 30, 0] and body[44, 30, 0]  # the lungs: below -400 HU but inside the outline
    assert not body[10, 60, 0]  # the couch
    assert not body[0, 0, 0]


def test_mr_slice_sets_use_the_head_area_and_ignore_background_noise():
    rng = np.random.default_rng(0)
    x, y = np.mgrid[:48, :48]
    image = rng.uniform(0, 20, (48, 48, 12))  # background noise: below 10 % of the 99th percentile
    radius = [20] * 12
    radius[0], radius[11] = 12, 14  # (12/20)^2 = 36 % and 49 % of the largest head: not primary
    for k in range(12):
        image[..., k][(x - 24) ** 2 + (y - 24) ** 2 <= radius[k] ** 2] = 600.0
    label = np.zeros_like(image, bool)
    label[20:24, 20:24, 5] = True
    sets = external_tumours.slice_sets(image, label, spacing_mm=6.5, modality="MR")
    assert sets["anomalous"] == [5]
    assert sets["all"] == [k for k in range(12) if k not in (4, 5, 6)]  # 6.5 mm < 10 mm: neighbours left out
    assert sets["primary"] == [k for k in range(1, 11) if k not in (4, 5, 6)]
    with pytest.raises(ValueError, match="marks no voxel"):
        external_tumours.slice_sets(image, np.zeros_like(label), 6.5, "MR")


def _row(scores, threshold=1.0):
    return {"labelled_series": {"cases": {n: {"slice_scores": s, "threshold": threshold} for n, s in scores.items()}}}


SETS = {
    "a": {"anomalous": [0, 1], "primary": [2, 3, 4], "all": [2, 3, 4, 5]},
    "b": {"anomalous": [0], "primary": [1, 2], "all": [1, 2]},
}


def test_slice_auroc_pools_patients_and_keeps_their_offsets():
    # patient a: anomalies 0.5, 0.9 against normals 0.1, 0.2, 0.6 (extra normal 0.95 in 'all')
    # patient b sits higher: anomaly 3.0 against normals 2.0, 2.5
    row = _row({"a": [0.5, 0.9, 0.1, 0.2, 0.6, 0.95], "b": [3.0, 2.0, 2.5]})
    assert external_tumours.slice_auroc(row, SETS, ["a"]) == pytest.approx(roc_auc_score([1, 1, 0, 0, 0], [0.5, 0.9, 0.1, 0.2, 0.6]))
    assert external_tumours.slice_auroc(row, SETS, ["b"]) == 1.0
    pooled = roc_auc_score([1, 1, 0, 0, 0, 1, 0, 0], [0.5, 0.9, 0.1, 0.2, 0.6, 3.0, 2.0, 2.5])
    assert external_tumours.slice_auroc(row, SETS, ["a", "b"]) == pytest.approx(pooled)  # b's normals outrank a's anomalies
    every = roc_auc_score([1, 1, 0, 0, 0, 0, 1, 0, 0], [0.5, 0.9, 0.1, 0.2, 0.6, 0.95, 3.0, 2.0, 2.5])
    assert external_tumours.slice_auroc(row, SETS, ["a", "b"], "all") == pytest.approx(every)
    # at the stored threshold 1.0: anomalies above it 1 of 3 (0.9 < 1.0; 3.0 >= 1.0 ...)
    sens, spec = external_tumours.operating_point(row, SETS, ["a", "b"])
    assert (sens, spec) == (pytest.approx(1 / 3), pytest.approx(3 / 5))


def test_labelled_series_scores_pixels_of_the_chosen_slices_inside_the_body(tmp_path, monkeypatch):
    """The map against the label inside the body on the ``pixels`` slices only: a map that is wrong
    outside them (or outside the body) must not change the AUROC."""
    shape = (16, 16, 6)
    label, body = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    label[4:8, 4:8, 2] = 1
    body[2:14, 2:14, :] = 1
    amap = np.where(label > 0, 0.8, 0.1).astype(np.float32)
    amap[5, 5, 2] = 0.05  # one missed lesion pixel: a known AUROC below 1
    amap[10:14, 10:14, 4] = 5.0  # a false alarm on slice 4, which the pixel set leaves out
    amap[0, 0, 2] = 9.0  # outside the body
    affine = np.eye(4)
    for name, array in (("label", label), ("body", body)):
        nib.save(nib.Nifti1Image(array, affine), tmp_path / f"{name}.nii.gz")
    out_dir = tmp_path / "scored"

    def fake_score_cases(model, inputs, output, dicom_output):
        (output / "case_001").mkdir(parents=True)
        nib.save(nib.Nifti1Image(amap, affine), output / "case_001" / "anomaly_map.nii.gz")
        return {"failures": [], "cases": [{"anomaly_map": "case_001/anomaly_map.nii.gz", "slice_scores": [0.1] * 6, "threshold": 0.5}]}

    monkeypatch.setattr("mama_monai.workflows.scoring.score_cases", fake_score_cases)
    case = {"name": "p", "image": "unused.nrrd", "label": str(tmp_path / "label.nii.gz"), "body": str(tmp_path / "body.nii.gz"), "pixels": [1, 2, 3]}
    got = accuracy.labelled_series(Path("m.pt"), [case], out_dir)
    inside = body[..., [1, 2, 3]] > 0
    expected = roc_auc_score(label[..., [1, 2, 3]][inside], amap[..., [1, 2, 3]][inside])
    assert expected < 1.0
    assert got["pixel_auroc"] == pytest.approx(expected) == got["cases"]["p"]["pixel_auroc"]
    assert got["cases"]["p"]["threshold"] == 0.5 and got["cases"]["p"]["slice_scores"] == [0.1] * 6
    with pytest.raises(ValueError, match="anomaly map of p"):
        nib.save(nib.Nifti1Image(np.zeros((16, 16, 5), np.uint8), affine), tmp_path / "label.nii.gz")
        accuracy.labelled_series(Path("m.pt"), [case], tmp_path / "again")


def test_more_patients_adds_the_slices_15_mm_from_the_tumour_to_the_demo_manifest(tmp_path):
    from benchmarks import more_patients
    from mama_monai.data.demo import demo_manifest
    from mama_monai.data.manifest import load_manifest

    sets = {"anomalous": [10, 11], "primary": [], "all": []}
    # 5 mm slices: 8 and 13 are 10 mm away (left out), 7 and 14 are 15 mm away (kept)
    assert more_patients.training_slices(sets, 20, 5.0) == [k for k in range(20) if not 8 <= k <= 13]
    image = tmp_path / "p_image.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 20), np.int16), np.eye(4)), image)
    case = {"name": "p", "image": str(image), "sets": sets, "slices": 20, "slice_mm": 5.0}
    written = load_manifest(more_patients.manifest_with(case, tmp_path))
    demo = demo_manifest("lidc")
    assert [c.case_id for c in written.cases[: len(demo.cases)]] == [c.case_id for c in demo.cases]
    added = written.cases[len(demo.cases):]
    assert [c.slice_index for c in added] == more_patients.training_slices(sets, 20, 5.0)
    assert {(c.split, c.label, c.group) for c in added} == {("train", 0, "pyradiomics-p")}
    assert {d["image"] for d in written.to_dicts()[len(demo.cases):]} == {str(image)}


def test_where_peaks_counts_finding_slices_peaking_at_the_label_and_normals_peaking_at_the_edge():
    amap, label = np.zeros((100, 100, 5), np.float32), np.zeros((100, 100, 5), bool)
    label[50:54, 50:54, 0:2] = True
    amap[55, 55, 0] = 1.0  # 2 px beyond the label: at the finding
    amap[90, 30, 1] = 1.0  # far from it: elsewhere
    amap[5, 50, 2] = 1.0  # a normal slice peaking 5 px from the edge
    amap[50, 50, 3] = 1.0  # one peaking in the middle
    amap[50, 85, 4] = 1.0  # 14 px from the edge (< 20)
    sets = {"anomalous": [0, 1], "primary": [2, 3, 4]}
    assert external_tumours.where_peaks(amap, label, sets) == {
        "finding_slices": 2, "peak_at_finding": 1, "primary_normals": 3, "peak_at_edge": 2}
    amap[30, 30, 0] = 2.0  # now slice 0 peaks 20 px away from its label
    assert external_tumours.where_peaks(amap, label, sets)["peak_at_finding"] == 0


def test_each_page_names_the_prediction_written_for_its_own_run():
    """Known answers: the first run's rows (output external_tumours.json) name
    external_tumours_prediction.txt; the re-run with the baselines at 0.002 (its own output name)
    names its own file, which exists in docs/accuracy, as does the first."""
    docs = ROOT / "docs" / "accuracy"
    first = external_tumours.prediction_file({"output": "docs/accuracy/external_tumours.json"})
    rerun = external_tumours.prediction_file({"output": str(docs / "external_tumours_rates.json")})
    assert (first, rerun) == ("external_tumours_prediction.txt", "external_tumours_rates_prediction.txt")
    assert (docs / first).is_file() and (docs / rerun).is_file()
    for stem in ("external_tumours", "external_tumours_rates"):
        assert f"`{stem}_prediction.txt`" in (docs / f"{stem}.md").read_text()
