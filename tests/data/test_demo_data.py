"""The embedded demo data (real LIDC-IDRI-0001 CT, real MNI152 T1 + SIMULATED lesions) and its tools."""

from __future__ import annotations

import hashlib
import re

import nibabel as nib
import numpy as np
import pytest

from mama_monai.data.demo import demo_data_dir, demo_manifest, demo_slice_table, load_demo_brain, load_demo_ct
from mama_monai.data.lidc import parse_lidc_xml, rasterize_reading
from mama_monai.data.simulated_lesions import Lesion, insert_lesions, simulate_lesions


def _array(path):
    return np.asarray(nib.load(str(path)).dataobj)


def test_files_match_provenance_and_size_budget():
    root = demo_data_dir()
    table = re.findall(r"\| `([0-9a-f]{64})` \| `([^`]+)` \| (\d+) \|", (root / "PROVENANCE.md").read_text())
    data_files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix in (".gz", ".csv", ".json")}
    assert {name for _, name, _ in table} == data_files
    for digest, name, size in table:
        content = (root / name).read_bytes()
        assert hashlib.sha256(content).hexdigest() == digest, name
        assert len(content) == int(size), name
    for licence in ("LICENSE-LIDC-IDRI.txt", "LICENSE-MNI152.txt", "LICENSE-TotalSegmentator.txt"):
        assert (root / licence).is_file()
    assert "Copyright (C) 1993-2004 Louis Collins" in (root / "LICENSE-MNI152.txt").read_text()
    assert "CC BY 3.0" in (root / "LICENSE-LIDC-IDRI.txt").read_text()
    assert "Apache License" in (root / "LICENSE-TotalSegmentator.txt").read_text()
    assert sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) <= 6 * 2**20  # two chest CTs of ~2.5 MB


def test_ct_geometry():
    paths = load_demo_ct()
    img = nib.load(str(paths["image"]))
    assert img.get_data_dtype() == np.int16 and img.shape == (170, 129, 133)
    np.testing.assert_allclose(img.header.get_zooms(), (0.703125 * 3, 0.703125 * 3, 2.5), rtol=1e-6)
    assert nib.aff2axcodes(img.affine) == ("L", "P", "S")  # DICOM LPS rows/cols, written as RAS affine
    z_table = [r["z_mm"] for r in demo_slice_table("lidc")]
    z_affine = [(img.affine @ [0, 0, k, 1])[2] for k in range(img.shape[2])]
    np.testing.assert_allclose(z_affine, z_table, atol=1e-3)
    assert z_table[0] == -340.0 and z_table[-1] == -10.0
    hu = np.asarray(img.dataobj)
    assert hu.min() == -1024 and hu.max() > 1000
    for key in ("mask", "agreement"):
        other = nib.load(str(paths[key]))
        assert other.shape == img.shape and np.allclose(other.affine, img.affine)


def test_nodule_mask_on_exactly_the_anomalous_slices():
    paths = load_demo_ct()
    mask, agreement = _array(paths["mask"]), _array(paths["agreement"])
    rows = demo_slice_table("lidc")
    per_slice = mask.reshape(-1, mask.shape[2]).sum(0)
    anomalous = np.array([r["split"] == "anomalous" for r in rows])
    assert ((per_slice > 0) == anomalous).all()
    assert [r["nodule_voxels"] for r in rows] == per_slice.tolist()
    assert ((agreement > 0) == (mask > 0)).all() and agreement.max() == 4
    assert all((r["n_readers"] > 0) == (r["split"] == "anomalous") for r in rows)
    assert sum(r["large_nodule"] for r in rows) == 9


def test_fair_split_rules_and_counts():
    rows = demo_slice_table("lidc")
    counts = {s: sum(r["split"] == s for r in rows) for s in ("anomalous", "test_normal", "train", "excluded")}
    assert counts == {"anomalous": 11, "test_normal": 28, "train": 75, "excluded": 19}  # DESIGN.md §7: 11, 28
    for r in rows:
        if r["split"] == "train":
            assert r["distance_mm"] >= 15.0 and r["n_readers"] == 0
        elif r["split"] == "test_normal":
            assert 5.0 <= r["distance_mm"] < 15.0 and r["n_readers"] == 0
        elif r["split"] == "excluded":
            assert r["distance_mm"] < 5.0 and r["n_readers"] == 0
        else:
            assert r["distance_mm"] == 0.0
    cases = [c for c in demo_manifest("lidc").cases if c.group == "LIDC-IDRI-0001"]
    by_index = {r["slice_index"]: r for r in rows}
    assert len(cases) == 11 + 28 + 75
    for c in cases:
        role = by_index[c.slice_index]["split"]
        assert c.label == int(role == "anomalous") and c.split == ("train" if role == "train" else "test")
        assert not c.simulated


def test_second_patient_ct_is_training_only_on_the_lidc_voxel():
    manifest = demo_manifest("lidc")
    second = [c for c in manifest.cases if c.group == "TotalSegmentator-example-CT"]
    assert len(manifest.cases) == 11 + 28 + 75 + 115 and len(second) == 115
    assert {(c.split, c.label, c.mask, c.simulated) for c in second} == {("train", 0, None, False)}
    assert [c.slice_index for c in second] == list(range(115))
    assert all(c.group == "LIDC-IDRI-0001" for c in manifest.cases if c.split == "test")  # the test is LIDC's alone
    img = nib.load(str(manifest.root / second[0].image))
    lidc = nib.load(str(load_demo_ct()["image"]))
    assert img.get_data_dtype() == np.int16 and img.shape == (166, 119, 115)
    np.testing.assert_allclose(img.header.get_zooms(), lidc.header.get_zooms(), rtol=1e-6)
    assert nib.aff2axcodes(img.affine) == nib.aff2axcodes(lidc.affine) == ("L", "P", "S")
    hu = np.asarray(img.dataobj)
    assert -1100 < hu.min() <= -1024 and hu.max() > 1000 and (hu == -1024).mean() > 0.2  # HU; outside the body -1024
    lung = (hu > -950) & (hu < -500)  # aerated lung on the slices of the chest
    assert lung[:, :, 40:100].mean() > 0.05 and lung[:, :, :5].mean() < lung[:, :, 40:100].mean()


def test_brain_demo_and_simulated_labels():
    paths = load_demo_brain()
    t1, sim, mask = _array(paths["image"]), _array(paths["simulated_image"]), _array(paths["simulated_mask"])
    img = nib.load(str(paths["image"]))
    np.testing.assert_allclose(img.header.get_zooms(), (2.0, 2.0, 2.0))
    assert nib.aff2axcodes(img.affine) == ("R", "A", "S") and t1.dtype == np.int16
    rows = demo_slice_table("brain")
    test = np.array([r["split"] == "test" for r in rows])
    assert ((mask.reshape(-1, mask.shape[2]).sum(0) > 0) == test).all()
    assert (sim[:, :, ~test] == t1[:, :, ~test]).all()
    assert all((r["simulated_lesion"] == 1) == (r["split"] == "test") for r in rows)
    for c in demo_manifest("brain").cases:
        assert c.simulated == (c.label == 1) and (c.label == 0 or c.image == "t1_simulated_lesions.nii.gz")


def test_lidc_xml_rasterisation(tmp_path):
    edge = "".join(f"<edgeMap><xCoord>{x}</xCoord><yCoord>{y}</yCoord></edgeMap>" for x, y in
                   [(10, 10), (20, 10), (20, 20), (10, 20)])
    xml = f"""<?xml version="1.0"?><LidcReadMessage xmlns="http://www.nih.gov"><readingSession>
      <unblindedReadNodule><noduleID>1</noduleID><roi><imageZposition>-5.0</imageZposition>
      <inclusion>TRUE</inclusion>{edge}</roi></unblindedReadNodule>
      <unblindedReadNodule><noduleID>2</noduleID><roi><imageZposition>0.0</imageZposition>
      <inclusion>TRUE</inclusion><edgeMap><xCoord>40</xCoord><yCoord>30</yCoord></edgeMap></roi></unblindedReadNodule>
      <nonNodule><nonNoduleID>n</nonNoduleID><imageZposition>2.5</imageZposition><locus><xCoord>5</xCoord><yCoord>5</yCoord></locus></nonNodule>
    </readingSession></LidcReadMessage>"""
    (tmp_path / "r.xml").write_text(xml)
    (reading,) = parse_lidc_xml(tmp_path / "r.xml")
    assert [n.is_point for n in reading.nodules] == [False, True] and reading.non_nodules[0].z_mm == 2.5
    mask = rasterize_reading(reading, np.array([-5.0, -2.5, 0.0, 2.5]), (64, 64), spacing_mm=0.5)
    assert mask[0].sum() == 11 * 11 and mask[0, 10:21, 10:21].all()  # outline pixels included
    assert mask[2, 30, 40] and mask[2].sum() == 29  # 3 mm disk = radius 3 px
    assert not mask[1].any() and not mask[3].any()  # non-nodules are not drawn
    with pytest.raises(ValueError, match="z=-5.0 mm matches no slice"):
        rasterize_reading(reading, np.array([0.0, 2.5]), (64, 64), 0.5)


def test_insert_lesions_changes_intensity_by_requested_fraction():
    image = np.full((64, 64), 100.0)
    for contrast in (0.4, -0.35):
        out, mask = insert_lesions(image, [Lesion((32, 30), 8.0, contrast)])
        assert out[32, 30] == pytest.approx(100.0 * (1 + contrast), rel=1e-5)
        inside = out[mask > 0] / 100.0 - 1
        assert np.all(np.sign(inside) == np.sign(contrast)) and np.all(np.abs(inside) <= abs(contrast) + 1e-6)
        assert np.all(np.abs(inside) >= abs(contrast) / 2 - 1e-6)  # mask = weight >= 0.5
        assert np.all(np.abs(out[mask == 0] / 100.0 - 1) <= abs(contrast) / 2 + 1e-6)  # outside: less than half
        assert abs(mask.sum() - np.pi * 64) < 0.2 * np.pi * 64
    out3, mask3 = insert_lesions(np.ones((24, 24, 24)), [Lesion((12, 12, 12), 5.0, 0.5)])
    assert out3[12, 12, 12] == pytest.approx(1.5) and mask3.sum() > 0


def test_simulate_lesions_deterministic_and_in_foreground():
    image = np.zeros((96, 96), np.float32)
    image[20:76, 20:76] = 50.0
    a = simulate_lesions(image, np.random.default_rng(7), n=3)
    b = simulate_lesions(image, np.random.default_rng(7), n=3)
    assert a[2] == b[2] and np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[2] != simulate_lesions(image, np.random.default_rng(8), n=3)[2]
    for lesion in a[2]:
        assert image[lesion.center] > 0 and 5 <= lesion.radius <= 15 and 0.3 <= abs(lesion.contrast) <= 0.5
    dark = simulate_lesions(image, np.random.default_rng(0), n=4, sign=-1)[2]
    assert all(les.contrast < 0 for les in dark)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"radius_px": (10, 5)}, "radius_px must be a"),
        ({"contrast": (0.5,)}, "contrast must be a"),
        ({"sign": 2}, "sign must be"),
        ({"n": -1}, "n must be >= 0"),
        ({"radius_px": (40, 40)}, "no foreground voxel at least 40 voxels"),
    ],
)
def test_simulate_lesions_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_lesions(np.ones((64, 64)), np.random.default_rng(0), **kwargs)
