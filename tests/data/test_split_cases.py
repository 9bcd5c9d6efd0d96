"""split_cases: which cases are trained on and which are tested, on small manifests with known answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from mama_monai.data.manifest import Manifest, ManifestCase, split_cases


def _case(name, label=0, fold=None, split=None):
    return ManifestCase(case_id=name, image=f"{name}.nii.gz", label=label, fold=fold, split=split)


def _ids(cases):
    return [c.case_id for c in cases]


def test_fixed_split_lists_each_case_once_in_its_split():
    m = Manifest("d", Path("/data"), [_case("a", split="train"), _case("b", 1, split="test"), _case("c", split="test")])
    assert {k: _ids(v) for k, v in split_cases(m).items()} == {"train": ["a"], "test": ["b", "c"]}


def test_folds_put_fold_k_in_test_and_every_other_fold_plus_fixed_train_cases_in_train():
    cases = [_case("a", fold=0), _case("b", 1, fold=1), _case("c", fold=2), _case("t", split="train"), _case("x", split="test")]
    m = Manifest("d", Path("/data"), cases)  # num_folds not stored: 1 + the largest fold = 3
    assert {k: _ids(v) for k, v in split_cases(m, 1).items()} == {"train": ["a", "c", "t"], "test": ["b", "x"]}
    assert {k: _ids(v) for k, v in split_cases(m, 0).items()} == {"train": ["b", "c", "t"], "test": ["a", "x"]}
    assert {k: _ids(v) for k, v in split_cases(m, 2).items()} == {"train": ["a", "b", "t"], "test": ["c", "x"]}
    for bad in (3, -1, True, 1.0):
        with pytest.raises(ValueError, match=rf"fold must be an integer in 0\.\.2, got {bad!r}"):
            split_cases(m, bad)


def test_a_stored_number_of_folds_bounds_the_fold():
    m = Manifest("d", Path("/data"), [_case("a", fold=0), _case("b", fold=1)], num_folds=5)
    assert _ids(split_cases(m, 4)["test"]) == [] and _ids(split_cases(m, 4)["train"]) == ["a", "b"]
    with pytest.raises(ValueError, match=r"0\.\.4, got 5"):
        split_cases(m, 5)


def test_fixed_split_refuses_cases_that_carry_only_a_fold_but_not_cases_with_both():
    both = Manifest("d", Path("/data"), [_case("a", fold=0, split="train"), _case("b", split="test")])
    assert _ids(split_cases(both)["train"]) == ["a"]
    neither = Manifest("d", Path("/data"), [_case("a"), _case("b", split="test")])  # 'a' in no split: left out
    assert {k: _ids(v) for k, v in split_cases(neither).items()} == {"train": [], "test": ["b"]}
    only_fold = Manifest("d", Path("/data"), [_case("a", fold=0), _case("b", fold=1), _case("c", split="test")], num_folds=2)
    with pytest.raises(ValueError, match=r"fold=None but 2 cases \(e\.g\. \['a', 'b'\]\) have only a fold; pass fold=0\.\.1"):
        split_cases(only_fold)


def test_without_any_fold_no_fold_can_be_asked_for():
    m = Manifest("d", Path("/data"), [_case("a", split="train"), _case("b", split="test")])
    with pytest.raises(ValueError, match=r"^fold must be an integer in 0\.\.-1, got 0\.$"):
        split_cases(m, 0)
