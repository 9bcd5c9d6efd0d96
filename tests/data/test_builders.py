"""Manifest builders on tiny fixture folders laid out like the real public downloads."""

from __future__ import annotations

import csv
import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from mama_monai.data.builders import ExtraFilesWarning, build_covid_ct, build_covid_xray, build_manifest, build_rider
from mama_monai.data.manifest import load_manifest, split_cases


def _png(path, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(path)


@pytest.fixture
def covid_ct(tmp_path):
    root = tmp_path / "COVID-CT"
    split = {"COVID": {"train": ["c0.png", "c1.png"], "val": ["c2.png"], "test": ["c3.png", "c4.png"]},
             "NonCOVID": {"train": ["0.jpg", "1.png", "2.png"], "val": ["3.png"], "test": ["4.png", "5.jpg"]}}
    for cls, parts in split.items():
        for s, names in parts.items():
            for n in names:
                _png(root / "Images-processed" / f"CT_{cls}" / n)
            (root / "Data-split" / cls).mkdir(parents=True, exist_ok=True)
            (root / "Data-split" / cls / f"{s}CT_{cls}.txt").write_text("\r\n".join(names) + "\n")
    return root


def test_covid_ct_repo_split(covid_ct, tmp_path):
    m = build_manifest("covid_ct", covid_ct, tmp_path / "out" / "ct.json")
    loaded = load_manifest(tmp_path / "out" / "ct.json")
    assert [c.case_id for c in loaded.cases] == [c.case_id for c in m.cases]
    parts = split_cases(loaded)
    assert sorted(c.case_id for c in parts["train"]) == ["noncovid/0.jpg", "noncovid/1.png", "noncovid/2.png", "noncovid/3.png"]
    assert sorted((c.case_id, c.label) for c in parts["test"]) == [("covid/c3.png", 1), ("covid/c4.png", 1), ("noncovid/4.png", 0), ("noncovid/5.jpg", 0)]
    assert "3 COVID train/val slices left out" in loaded.description


def test_covid_ct_missing_and_extra_files(covid_ct):
    (covid_ct / "Images-processed" / "CT_COVID" / "c3.png").unlink()
    (covid_ct / "Images-processed" / "CT_NonCOVID" / "5.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"2 expected file\(s\) missing .*CT_COVID/c3\.png, Images-processed/CT_NonCOVID/5\.jpg"):
        build_covid_ct(covid_ct)
    _png(covid_ct / "Images-processed" / "CT_NonCOVID" / "5.jpg")
    _png(covid_ct / "Images-processed" / "CT_COVID" / "c3.png")
    _png(covid_ct / "Images-processed" / "CT_NonCOVID" / "stray.png")
    with pytest.warns(ExtraFilesWarning, match="stray.png"):
        build_covid_ct(covid_ct)


def test_covid_ct_paper_counts_and_zip_hint(covid_ct, tmp_path):
    m = build_covid_ct(covid_ct, split_source="paper_counts", n_test_normal=2, n_test_covid=3, seed=1)
    assert sum(c.split == "test" and c.label == 0 for c in m.cases) == 2
    assert sum(c.label == 1 for c in m.cases) == 3 and sum(c.split == "train" for c in m.cases) == 4
    assert m.cases == build_covid_ct(covid_ct, split_source="paper_counts", n_test_normal=2, n_test_covid=3, seed=1).cases
    with pytest.raises(ValueError, match="n_test_normal=168"):
        build_covid_ct(covid_ct, split_source="paper_counts")
    with pytest.raises(ValueError, match="split_source must be .* got 'x'"):
        build_covid_ct(covid_ct, split_source="x")
    empty = tmp_path / "empty" / "Images-processed"
    empty.mkdir(parents=True)
    (empty / "CT_COVID.zip").write_bytes(b"PK")
    with pytest.raises(FileNotFoundError, match="unzip it"):
        build_covid_ct(empty.parent)


@pytest.fixture
def xray(tmp_path):
    root = tmp_path / "covid-chestxray-dataset"
    rows = [
        ("1", "Pneumonia/Viral/COVID-19", "X-ray", "PA", "images", "a.png"),
        ("1", "Pneumonia/Viral/COVID-19", "X-ray", "AP", "images", "b.jpg"),
        ("2", "Pneumonia/Viral/COVID-19", "X-ray", "PA", "images", "c.png"),
        ("3", "Pneumonia/Viral/SARS", "X-ray", "PA", "images", "d.png"),
        ("4", "Pneumonia/Viral/COVID-19", "CT", "Axial", "images", "e.png"),
        ("5", "Pneumonia/Viral/COVID-19", "CT", "Axial", "volumes", "f.nii.gz"),
    ]
    root.mkdir()
    with open(root / "metadata.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["patientid", "offset", "finding", "modality", "view", "folder", "filename"])
        for r in rows:
            w.writerow([r[0], "", *r[1:]])
            if r[4] == "images":
                _png(root / "images" / r[5])
    normals = tmp_path / "chest_xray" / "train" / "NORMAL"
    for i in range(10):
        _png(normals / f"IM-{i:04d}-0001.jpeg")
    return root, normals


def test_covid_xray_protocol(xray, tmp_path):
    root, normals = xray
    m = build_manifest("covid_xray", root, tmp_path / "x.json", folds=5, seed=0, normals_dir=normals)
    covid = [c for c in m.cases if c.label == 1]
    assert sorted(c.case_id for c in covid) == ["covid/a.png", "covid/b.jpg", "covid/c.png"]
    assert all(c.split == "test" and c.fold is None for c in covid) and covid[0].group == "1"
    assert sorted(Counter(c.fold for c in m.cases if c.label == 0).values()) == [2, 2, 2, 2, 2]
    parts = split_cases(load_manifest(tmp_path / "x.json"), fold=2)
    assert len(parts["train"]) == 8 and len(parts["test"]) == 5
    only_pa = build_covid_xray(root, normals, views=("PA",))
    assert sorted(c.case_id for c in only_pa.cases if c.label == 1) == ["covid/a.png", "covid/c.png"]


def test_covid_xray_missing_and_extra(xray):
    root, normals = xray
    (root / "images" / "b.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"b\.jpg"):
        build_covid_xray(root, normals)
    _png(root / "images" / "b.jpg")
    _png(root / "images" / "unlisted.png")
    with pytest.warns(ExtraFilesWarning, match="unlisted.png"):
        build_covid_xray(root, normals)
    (root / "metadata.csv").unlink()
    with pytest.raises(FileNotFoundError, match="metadata.csv"):
        build_covid_xray(root, normals)


def _dicom(path):
    from pydicom.data import get_testdata_file

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(open(get_testdata_file("MR_small.dcm"), "rb").read())


@pytest.fixture
def rider(tmp_path):
    root = tmp_path / "RIDER Neuro MRI"
    rows = []
    for p in range(6):
        series = root / f"RIDER Neuro MRI-10{p}" / "01-01-1900-NA-BRAINRESEARCH-1" / "5.000000-T1 post-2"
        for s in range(4):
            _dicom(series / f"1-{s:02d}.dcm")
            rows.append({"file": (series / f"1-{s:02d}.dcm").relative_to(root).as_posix(), "label": int(s >= 1 + p % 2)})
        _dicom(root / f"RIDER Neuro MRI-10{p}" / "01-01-1900-NA-BRAINRESEARCH-1" / "7.000000-T2-3" / "1-01.dcm")
    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["file", "label"])
        w.writeheader()
        w.writerows(rows)
    return root, labels


def test_rider_grouped_folds(rider, tmp_path):
    root, labels = rider
    with pytest.warns(ExtraFilesWarning, match=r"6 file\(s\).*7.000000-T2-3/1-01.dcm"):
        m = build_manifest("rider", root, tmp_path / "r.json", folds=3, seed=0, labels_csv=labels)
    assert len(m.cases) == 24 and {c.group for c in m.cases} == {f"RIDER Neuro MRI-10{p}" for p in range(6)}
    for g in {c.group for c in m.cases}:
        assert len({c.fold for c in m.cases if c.group == g}) == 1
    assert json.loads((tmp_path / "r.json").read_text())["num_folds"] == 3
    assert load_manifest(tmp_path / "r.json").cases == m.cases


def test_rider_bad_labels(rider, tmp_path):
    root, labels = rider
    text = labels.read_text().splitlines()
    (tmp_path / "bad.csv").write_text("\n".join(text[:3] + ["RIDER Neuro MRI-100/x/y/missing.dcm,0"]) + "\n")
    with pytest.raises(FileNotFoundError, match="missing.dcm"):
        build_rider(root, tmp_path / "bad.csv", folds=2)
    (tmp_path / "bad.csv").write_text("\n".join(text[:2] + [text[1].rsplit(",", 1)[0] + ",2"]) + "\n")
    with pytest.raises(ValueError, match="line 3 .* label must be 0 or 1, got '2'"):
        build_rider(root, tmp_path / "bad.csv")
    (tmp_path / "bad.csv").write_text("path,label\nx.dcm,0\n")
    with pytest.raises(ValueError, match=r"lacks columns \['file'\]"):
        build_rider(root, tmp_path / "bad.csv")
    with pytest.raises(FileNotFoundError, match="labels_csv .*nope.csv"):
        build_rider(root, tmp_path / "nope.csv")


def test_registry_rejects_unknown(tmp_path):
    with pytest.raises(ValueError, match="dataset must be one of .* got 'mnist'"):
        build_manifest("mnist", tmp_path, tmp_path / "m.json")
    with pytest.raises(TypeError, match=r"unknown arguments \['labels'\]"):
        build_manifest("rider", tmp_path, tmp_path / "m.json", labels="x.csv")


def test_manifest_command_writes_a_loadable_manifest(covid_ct, tmp_path, capsys):
    from mama_monai.cli import main

    out = tmp_path / "covid_ct.json"
    assert main(["manifest", "covid_ct", str(covid_ct), str(out)]) == 0
    manifest = load_manifest(out)
    assert {c.split for c in manifest.cases} == {"train", "test"}
    assert f"wrote {out}" in capsys.readouterr().out


def test_manifest_command_names_the_missing_folder(tmp_path, capsys):
    from mama_monai.cli import main

    assert main(["manifest", "covid_ct", str(tmp_path / "nowhere"), str(tmp_path / "m.json")]) == 2
    assert "nowhere" in capsys.readouterr().err
