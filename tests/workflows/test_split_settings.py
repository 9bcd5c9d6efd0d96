"""prepare_splits honours the data section's split settings, with known counts on the demo's split."""

from __future__ import annotations

import pytest
import torch

from mama_monai.data.case_slices import simulated_anomalies
from mama_monai.workflows.splits import prepare_splits
from mama_monai.workflows.config import workflow_config

BASE = {"data#spatial_size": [32, 32], "data#num_workers": 0}


def _splits(**overrides):
    return prepare_splits(workflow_config("autoencoder", overrides={**BASE, **overrides}))


def test_defaults_hold_out_every_fifth_normal_of_the_two_patients_with_one_tissue_lesion_copy_each():
    parser = workflow_config("autoencoder", overrides=BASE)
    keys = ("val_every", "validation_split", "validation_block", "validation_gap", "simulated_validation_anomalies",
            "validation_lesion_radius", "validation_lesion_mode")  # fmt: skip
    for key in keys:
        parser.get("data").pop(key)  # configs/train.yaml states them; the code's defaults must be the same
    splits = prepare_splits(parser)
    assert set(splits) == {"manifest", "train", "val", "test", "failures"} and splits["failures"] == []
    normals = [it for it in splits["val"] if it["label"] == 0]
    lesions = [it for it in splits["val"] if it["label"] == 1]
    # 75 + 115 normal training slices of two patients (LIDC-IDRI-0001's, then the second CT's, in
    # manifest order): 'auto' holds out every 5th of the 190 (whole subjects need >= 5 subjects)
    assert (len(splits["train"]), len(normals), len(lesions)) == (152, 38, 38)
    lidc = [it["slice_index"] for it in normals if it["case_id"].startswith("lidc")]
    assert lidc == [4, 9, 14, 19, 24, 29, 45, 50, 102, 107, 112, 117, 122, 127, 132]
    assert [it["slice_index"] for it in normals if it["case_id"].startswith("totalseg")] == list(range(4, 115, 5))
    slabs = _splits(**{"data#validation_split": "blocks", "data#simulated_validation_anomalies": False})
    # slabs of 8 counted on across the two volumes (LIDC's 10, then the second CT's 15): every 5th held out
    assert [it["slice_index"] for it in slabs["val"]] == [32, 33, 45, 46, 47, 48, 49, 50, 130, 131, 132,
                                                          *range(32, 40), *range(72, 80), 112, 113, 114]  # fmt: skip
    assert len(slabs["train"]) == 58 + (115 - 19 - 5 * 2)  # the second CT: 19 held out, 2 dropped beside 5 slab edges
    # the lesions are simulate_lesions' 'tissue' kind with radius 2-6 % of the width, seeded by the config
    expected = simulated_anomalies(normals, seed=int(parser["seed"]), radius_fraction=(0.02, 0.06), mode="tissue")
    for got, want in zip(lesions, expected):
        assert torch.equal(got["image"], want["image"]) and torch.equal(got["mask"], want["mask"])
    assert splits["manifest"].dataset == "lidc_idri_0001_demo"


def test_val_every_and_the_lesion_settings_are_read_from_the_config(tmp_path):
    over = {"data#val_every": 3, "data#validation_split": "interleaved", "data#simulated_validation_anomalies": False}
    splits = _splits(**over, **{"data#cache_dir": str(tmp_path / "cache")})
    assert (len(splits["train"]), len(splits["val"])) == (127, 63) and all(it["label"] == 0 for it in splits["val"])
    assert any((tmp_path / "cache").rglob("*.pt"))  # the loading options reach the loader
    scale = _splits(**{"data#validation_lesion_mode": "scale", "data#validation_lesion_radius": [0.1, 0.12]})
    normals = [it for it in scale["val"] if it["label"] == 0]
    expected = simulated_anomalies(normals, seed=0, radius_fraction=(0.1, 0.12), mode="scale")
    lesions = [it for it in scale["val"] if it["label"] == 1]
    assert all(torch.equal(g["image"], w["image"]) for g, w in zip(lesions, expected))


def test_val_every_below_two_is_refused_naming_the_key():
    assert len(_splits(**{"data#val_every": 2, "data#validation_split": "interleaved"})["train"]) == 95  # 95 of 190 held out
    with pytest.raises(ValueError, match=r"data#val_every must be an integer >= 2 \(about one in val_every training slices is held out\), got 1"):
        _splits(**{"data#val_every": 1})


def test_anomalous_training_cases_are_never_trained_on_nor_held_out(tmp_path):
    import dataclasses

    from mama_monai.data.demo import demo_manifest
    from mama_monai.data.manifest import write_manifest

    demo = demo_manifest("lidc")
    train_ids = [c.case_id for c in demo.cases if c.split == "train"]
    relabelled = set(train_ids[:10])  # ten 'train' slices marked anomalous (a manifest may list them: RIDER folds)
    cases = [dataclasses.replace(c, label=1) if c.case_id in relabelled else c for c in demo.cases]
    path = write_manifest(dataclasses.replace(demo, cases=cases), tmp_path / "manifest.json", root=str(demo.root))
    over = {"data#manifest": str(path), "data#simulated_validation_anomalies": False, "data#validation_split": "interleaved"}
    splits = _splits(**over)
    seen = {it["case_id"] for it in splits["train"] + splits["val"]}
    assert seen.isdisjoint(relabelled) and len(seen) == 180  # the other 180 normal training slices
    assert all(it["label"] == 0 for it in splits["train"] + splits["val"])


def test_a_missing_training_file_is_refused_naming_it(tmp_path):
    import dataclasses

    from mama_monai.data.demo import demo_manifest
    from mama_monai.data.manifest import write_manifest

    demo = demo_manifest("lidc")
    cases = list(demo.cases)
    first = next(i for i, c in enumerate(cases) if c.split == "train")
    cases[first] = dataclasses.replace(cases[first], image="missing_volume.nii.gz")
    path = write_manifest(dataclasses.replace(demo, cases=cases), tmp_path / "manifest.json", root=str(demo.root), check_files=False)
    with pytest.raises(FileNotFoundError, match=r"1 file\(s\) named in the manifest do not exist .*: missing_volume.nii.gz"):
        _splits(**{"data#manifest": str(path)})


def test_with_five_subjects_whole_subjects_are_held_out_by_default(tmp_path):
    import dataclasses

    from mama_monai.data.demo import demo_manifest
    from mama_monai.data.manifest import write_manifest

    demo = demo_manifest("lidc")  # LIDC-IDRI-0001's training slices relabelled as five 'subjects' of 15 slices
    lidc = [c for c in demo.cases if c.group == "LIDC-IDRI-0001"]  # (without the second CT)
    subject = {c.case_id: f"subject-{i // 15}" for i, c in enumerate(c for c in lidc if c.split == "train")}
    cases = [dataclasses.replace(c, group=subject.get(c.case_id, c.group)) for c in lidc]
    path = write_manifest(dataclasses.replace(demo, cases=cases), tmp_path / "manifest.json", root=str(demo.root))
    splits = _splits(**{"data#manifest": str(path), "data#simulated_validation_anomalies": False})
    held = [it["case_id"] for it in splits["val"]]
    assert held == [cid for cid, g in subject.items() if g == "subject-4"] and len(held) == 15
    assert {subject[it["case_id"]] for it in splits["train"]} == {f"subject-{k}" for k in range(4)}


def test_too_few_normals_for_a_validation_case_is_refused_naming_val_every(tmp_path):
    import dataclasses

    from mama_monai.data.demo import demo_manifest
    from mama_monai.data.manifest import write_manifest

    demo = demo_manifest("lidc")  # four normal training slices: one in five holds none out
    train = [c for c in demo.cases if c.split == "train" and c.label == 0][:4]
    cases = train + [c for c in demo.cases if c.split == "test"]
    path = write_manifest(dataclasses.replace(demo, cases=cases), tmp_path / "manifest.json", root=str(demo.root))
    message = r"no validation normal: manifest 'lidc_idri_0001_demo' has 4 normal training case\(s\), and data#val_every=5 .* lower data#val_every"
    with pytest.raises(ValueError, match=message):
        _splits(**{"data#manifest": str(path), "data#validation_split": "interleaved"})
    assert len(_splits(**{"data#manifest": str(path), "data#val_every": 2})["val"]) == 4  # 2 normals + their 2 lesion copies
