"""hold_out_validation: whole subjects or slabs of slices, never a slice between two training slices."""

from __future__ import annotations

import pytest

from mama_monai.data.manifest import ManifestCase
from mama_monai.data.validation_holdout import hold_out_validation


def _volume(n: int, group: str | None = "subject-a", image: str = "ct.nii.gz") -> list[ManifestCase]:
    return [ManifestCase(f"{group}_{i:03d}", image, 0, group=group, slice_index=i) for i in range(n)]


def _indices(cases):
    return [c.slice_index for c in cases]


def test_slabs_of_one_volume_are_held_out_with_a_gap_on_either_side():
    # 20 slices in runs of 2: runs 4 ([8, 9]) and 9 ([18, 19]) held out; one slice dropped beside each
    train, val = hold_out_validation(_volume(20), every=5, mode="blocks", block=2, gap=1)
    assert _indices(val) == [8, 9, 18, 19]
    assert _indices(train) == [0, 1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16]
    nearest = min(abs(v - t) for v in _indices(val) for t in _indices(train))
    assert nearest == 2  # gap + 1: no validation slice has a training neighbour


def test_slabs_follow_slice_index_not_manifest_order_and_keep_manifest_order():
    cases = _volume(20)[::-1]
    train, val = hold_out_validation(cases, every=5, mode="blocks", block=2, gap=1)
    assert _indices(val) == [19, 18, 9, 8]  # the same slices, in the order given
    assert sorted(_indices(train)) == [0, 1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16]


def test_enough_subjects_are_held_out_whole():
    cases = [c for name in "fedcba" for c in _volume(3, group=f"subject-{name}")]
    train, val = hold_out_validation(cases, every=5)
    assert {c.group for c in val} == {"subject-e"}  # the 5th of the six, sorted by name
    assert len(val) == 3 and {c.group for c in train}.isdisjoint({"subject-e"}) and len(train) == 15


def test_images_without_a_group_are_grouped_by_file():
    cases = [ManifestCase(f"xray{i}", f"xray{i}.png", 0) for i in range(10)]  # 2D images: no group, no slice
    train, val = hold_out_validation(cases, every=5)
    assert [c.case_id for c in val] == ["xray4", "xray9"] and len(train) == 8


def test_interleaved_is_the_first_releases_every_nth_slice():
    train, val = hold_out_validation(_volume(12), every=3, mode="interleaved")
    assert _indices(val) == [2, 5, 8, 11] and len(train) == 8


def test_the_demo_volume_gets_every_fifth_slice_by_default_and_three_slabs_as_blocks():
    from mama_monai.data.demo import demo_manifest

    lidc = [c for c in demo_manifest("lidc").cases if c.group == "LIDC-IDRI-0001"]  # its one CT volume
    normals = [c for c in lidc if c.split == "train" and c.label == 0]
    train, val = hold_out_validation(normals)  # auto: one subject, so every 5th slice
    assert [c.case_id for c in val] == [c.case_id for c in normals[4::5]] and len(train) == 60
    train, val = hold_out_validation(normals, mode="blocks")  # slabs of 8, gap 2
    assert _indices(val) == [32, 33, 45, 46, 47, 48, 49, 50, 130, 131, 132]
    assert len(train) == 58 and set(_indices(train)).isdisjoint({30, 31, 51, 52, 128, 129})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"every": 1}, r"data#val_every must be an integer >= 2 .* got 1"),
        ({"mode": "random"}, r"data#validation_split must be one of \['auto', 'blocks', 'interleaved'\], got 'random'"),
        ({"block": 0}, r"data#validation_block must be an integer >= 1 .* got 0"),
        ({"gap": -1}, r"data#validation_gap must be an integer >= 0 .* got -1"),
        ({"gap": 1.5}, r"data#validation_gap must be an integer >= 0 .* got 1.5"),
    ],
)
def test_bad_settings_are_refused_naming_the_config_key(kwargs, message):
    with pytest.raises(ValueError, match=message):
        hold_out_validation(_volume(10), **kwargs)


def test_with_as_many_subjects_as_val_every_one_is_held_out_and_with_fewer_slabs_or_slices_are():
    five = [c for name in "abcde" for c in _volume(10, group=f"subject-{name}")]
    _, val = hold_out_validation(five, every=5, block=2, gap=0)
    assert {c.group for c in val} == {"subject-e"} and len(val) == 10
    four = [c for name in "abcd" for c in _volume(10, group=f"subject-{name}")]
    _, val = hold_out_validation(four, every=5)  # auto: too few subjects, every 5th slice in manifest order
    assert [(c.group, c.slice_index) for c in val] == [(f"subject-{s}", i) for s in "abcd" for i in (4, 9)]
    _, val = hold_out_validation(four, every=5, mode="blocks", block=2, gap=0)  # 20 runs of 2, counted across subjects
    assert [(c.group, c.slice_index) for c in val] == [("subject-a", 8), ("subject-a", 9), ("subject-b", 8), ("subject-b", 9),
                                                        ("subject-c", 8), ("subject-c", 9), ("subject-d", 8), ("subject-d", 9)]  # fmt: skip


def test_too_few_slices_for_every_slabs_shrink_the_slab_so_one_is_held_out():
    # 31 slices (the embedded brain's training slices): slabs of 8 would give 4 runs and no 5th
    train, val = hold_out_validation(_volume(31), mode="blocks", block=8, gap=2)
    assert _indices(val) == [24, 25, 26, 27, 28, 29]  # slabs of 6: the 5th is held out
    assert _indices(train) == list(range(22))  # 22-23 and 30 dropped beside the slab
