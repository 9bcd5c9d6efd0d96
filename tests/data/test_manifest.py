"""Manifest format: round trip, every rejected input, and the fold assignment."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from mama_monai.data.folds import assign_folds
from mama_monai.data.manifest import Manifest, ManifestCase, load_manifest, split_cases, write_manifest


def _manifest(tmp_path, n=6):
    (tmp_path / "img").mkdir()
    cases = []
    for i in range(n):
        (tmp_path / "img" / f"{i}.png").write_bytes(b"x")
        cases.append(ManifestCase(f"c{i}", f"img/{i}.png", i % 2, fold=i % 3, group=f"p{i // 2}"))
    (tmp_path / "mask.png").write_bytes(b"x")
    cases.append(ManifestCase("t", "img/0.png", 1, mask="mask.png", split="test", slice_index=3, simulated=True, meta={"z": 1.5}))
    return Manifest("toy", tmp_path, cases, num_folds=3, description="toy set")


def _write_raw(tmp_path, doc):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(doc))
    return path


def _doc(**case):
    base = {"case_id": "a", "image": "a.png", "label": 0}
    base.update(case)
    return {"schema_version": 1, "dataset": "x", "root": ".", "cases": [base]}


def test_round_trip(tmp_path):
    m = _manifest(tmp_path)
    out = write_manifest(m, tmp_path / "sub" / "m.json")
    assert json.loads(out.read_text())["root"] == ".."
    loaded = load_manifest(out)
    assert loaded.cases == m.cases and loaded.root == tmp_path.resolve() and loaded.num_folds == 3
    assert loaded.description == "toy set"
    dicts = loaded.to_dicts()
    assert dicts[-1]["mask"] == str(tmp_path.resolve() / "mask.png") and dicts[-1]["simulated"] is True
    assert not list((tmp_path / "sub").glob("*.tmp")), "temporary file left behind"


def test_missing_files_listed_by_name(tmp_path):
    m = _manifest(tmp_path)
    write_manifest(m, tmp_path / "m.json")
    (tmp_path / "img" / "2.png").unlink()
    (tmp_path / "mask.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"2 file\(s\).*img/2.png.*mask.png"):
        load_manifest(tmp_path / "m.json")
    assert len(load_manifest(tmp_path / "m.json", check_files=False).cases) == 7


def test_write_refuses_missing_file(tmp_path):
    m = _manifest(tmp_path)
    m.cases.append(ManifestCase("ghost", "img/ghost.png", 0))
    with pytest.raises(FileNotFoundError, match="img/ghost.png"):
        write_manifest(m, tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()


def test_duplicate_case_ids(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    doc = _doc()
    doc["cases"].append(dict(doc["cases"][0]))
    with pytest.raises(ValueError, match=r"duplicate case_id values \['a'\]"):
        load_manifest(_write_raw(tmp_path, doc))


@pytest.mark.parametrize(
    "case, message",
    [
        ({"label": 2}, "label must be 0 .* got 2"),
        ({"label": "1"}, "label must be 0 .* got '1'"),
        ({"label": True}, "label must be 0 .* got True"),
        ({"fold": -1}, "fold must be a non-negative integer, got -1"),
        ({"split": "val"}, "split must be one of .* got 'val'"),
        ({"split": "test", "fold": 1}, "both fold=1 and split='test'"),
        ({"colour": "red"}, r"unknown keys \['colour'\]"),
        ({"case_id": ""}, "case_id must be a non-empty string"),
        ({"image": 3}, "image must be a non-empty path string, got 3"),
        ({"simulated": "yes"}, "simulated must be true or false"),
        ({"slice_index": 1.5}, "slice_index must be a non-negative integer, got 1.5"),
    ],
)
def test_rejected_case(tmp_path, case, message):
    (tmp_path / "a.png").write_bytes(b"x")
    with pytest.raises(ValueError, match=message):
        load_manifest(_write_raw(tmp_path, _doc(**case)))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"schema_version": 2}, "schema_version must be 1, got 2"),
        ({"extra": 1}, r"unknown top-level keys \['extra'\]"),
        ({"root": None}, "'root' must be a string"),
        ({"cases": {}}, "'cases' must be a list"),
        ({"num_folds": 1}, "num_folds must be an integer >= 2, got 1"),
    ],
)
def test_rejected_top_level(tmp_path, change, message):
    (tmp_path / "a.png").write_bytes(b"x")
    doc = _doc()
    doc.update(change)
    with pytest.raises(ValueError, match=message):
        load_manifest(_write_raw(tmp_path, doc))


def test_bad_json_and_missing_manifest(tmp_path):
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_manifest(tmp_path / "m.json")
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_manifest(tmp_path / "nope.json")


def test_fold_out_of_range(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    doc = _doc(fold=5)
    doc["num_folds"] = 3
    with pytest.raises(ValueError, match=r"fold >= num_folds=3"):
        load_manifest(_write_raw(tmp_path, doc))


def test_split_cases(tmp_path):
    m = _manifest(tmp_path)
    parts = split_cases(m, fold=1)
    assert {c.case_id for c in parts["test"]} == {"c1", "c4", "t"}
    assert {c.case_id for c in parts["train"]} == {"c0", "c2", "c3", "c5"}
    with pytest.raises(ValueError, match="fold must be an integer in 0..2, got 3"):
        split_cases(m, fold=3)
    with pytest.raises(ValueError, match="have only a fold"):
        split_cases(m)


def test_folds_deterministic_and_stratified():
    labels = [1] * 23 + [0] * 77
    a, b = assign_folds(labels, 5, seed=3), assign_folds(labels, 5, seed=3)
    assert a == b and assign_folds(labels, 5, seed=4) != a
    ratio = sum(labels) / len(labels)
    for k in range(5):
        in_fold = [lab for lab, f in zip(labels, a) if f == k]
        assert abs(sum(in_fold) - ratio * len(in_fold)) <= 1
        assert 19 <= len(in_fold) <= 21


def test_grouped_folds_keep_patients_together():
    groups = [f"p{i // 4}" for i in range(80)]
    labels = [int(i // 4 % 3 == 0) for i in range(80)]
    folds = assign_folds(labels, 4, seed=0, groups=groups)
    by_group = {}
    for g, f in zip(groups, folds):
        by_group.setdefault(g, set()).add(f)
    assert all(len(v) == 1 for v in by_group.values())
    assert set(Counter(folds)) == {0, 1, 2, 3}
    assert folds == assign_folds(labels, 4, seed=0, groups=groups)


@pytest.mark.parametrize(
    "labels, kwargs, message",
    [
        ([0, 1, 0, 1], {"num_folds": 1}, "num_folds must be an integer >= 2, got 1"),
        ([0, 0, 0, 1], {"num_folds": 2}, "smallest class has only 1 cases"),
        ([0, 1], {"num_folds": 2, "groups": ["a"]}, "groups has 1 entries but labels has 2"),
        ([0, 1, 0, 1], {"num_folds": 2, "groups": ["a", "a", "a", "a"]}, "a class occurs in only 1 groups"),
    ],
)
def test_folds_rejected(labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        assign_folds(labels, **kwargs)
