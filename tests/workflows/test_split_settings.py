"""prepare_splits honours the data section's split settings, with known counts on the demo's split."""

from __future__ import annotations

import re

import pytest
import torch

from mama_monai.data.case_slices import simulated_anomalies
from mama_monai.workflows.splits import prepare_splits
from mama_monai.workflows.config import workflow_config

BASE = {"data#spatial_size": [32, 32], "data#num_workers": 0}


def _splits(**overrides):
    return prepare_splits(workflow_config("autoencoder", overrides={**BASE, **overrides}))


def test_defaults_hold_out_every_fifth_normal_of_the_two_patients_with_six_tissue_lesion_copies_each(caplog):
    caplog.set_level("INFO", logger="mama_monai.workflows.splits")
    parser = workflow_config("autoencoder", overrides=BASE)
    keys = ("val_every", "validation_split", "validation_block", "validation_gap", "simulated_validation_anomalies",
            "validation_lesion_radius", "validation_lesion_mode", "validation_lesion_copies", "validation_lesion_centres",
            "validation_lesion_enclosed", "validation_lesion_target", "validation_lesion_sign")  # fmt: skip
    for key in keys:
        parser.get("data").pop(key)  # configs/train.yaml states them; the code's defaults must be the same
    splits = prepare_splits(parser)
    assert set(splits) == {"manifest", "train", "val", "test", "failures"} and splits["failures"] == []
    normals = [it for it in splits["val"] if it["label"] == 0]
    lesions = [it for it in splits["val"] if it["label"] == 1]
    # 75 + 115 normal training slices of two patients (LIDC-IDRI-0001's, then the second CT's, in
    # manifest order): 'auto' holds out every 5th of the 190 (whole subjects need >= 5 subjects)
    # 'auto' lesion copies: ceil(200 / 38) = 6 per held-out slice
    assert (len(splits["train"]), len(normals), len(lesions)) == (152, 38, 6 * 38)
    assert "training on 152 normal slices; validation: 38 held-out normal slices + 228 SIMULATED-lesion copies of them (6 per slice)" in caplog.messages
    lidc = [it["slice_index"] for it in normals if it["case_id"].startswith("lidc")]
    assert lidc == [4, 9, 14, 19, 24, 29, 45, 50, 102, 107, 112, 117, 122, 127, 132]
    assert [it["slice_index"] for it in normals if it["case_id"].startswith("totalseg")] == list(range(4, 115, 5))
    slabs = _splits(**{"data#validation_split": "blocks", "data#simulated_validation_anomalies": False})
    # slabs of 8 counted on across the two volumes (LIDC's 10, then the second CT's 15): every 5th held out
    assert [it["slice_index"] for it in slabs["val"]] == [32, 33, 45, 46, 47, 48, 49, 50, 130, 131, 132,
                                                          *range(32, 40), *range(72, 80), 112, 113, 114]  # fmt: skip
    assert len(slabs["train"]) == 58 + (115 - 19 - 5 * 2)  # the second CT: 19 held out, 2 dropped beside 5 slab edges
    # the lesions are simulate_lesions' 'tissue' kind with radius 2-6 % of the width, seeded by the config
    expected = simulated_anomalies(normals, seed=int(parser["seed"]), radius_fraction=(0.02, 0.06), mode="tissue", copies=6)
    assert len(expected) == len(lesions)
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
    # 2 normals + 8 lesion copies of each ('auto': ceil(200 / 2), at most 8)
    assert len(_splits(**{"data#manifest": str(path), "data#val_every": 2})["val"]) == 2 + 2 * 8


def _lesion_reference(item, seed_sequence, sign):
    """One validation lesion drawn as simulated_anomalies documents it, independently of its loop."""
    import numpy as np

    from mama_monai.data.simulated_lesions import simulate_lesions

    image = item["image"][0].numpy()
    width = image.shape[-1]
    radius = (max(1.5, 0.02 * width), max(2.0, 0.06 * width))
    fg = image > 0.05
    out, mask, _ = simulate_lesions(image, np.random.default_rng(seed_sequence), n=1, radius_px=radius, sign=sign,
                                    foreground=fg if fg.any() else None, mode="tissue")  # fmt: skip
    return torch.from_numpy(out).float(), torch.from_numpy(mask).float()


def test_lesion_copies_are_separate_draws_and_copy_zero_is_the_one_copy_draw():
    splits = _splits(**{"data#simulated_validation_anomalies": False})
    normals = splits["val"][:5]
    copies = simulated_anomalies(normals, seed=3, copies=3)
    assert len(copies) == 15 and all(it["label"] == 1 and it["simulated"] for it in copies)
    one = simulated_anomalies(normals, seed=3)  # copies=1: the behaviour before the option
    for c in range(3):
        for i, item in enumerate(normals):
            got = copies[c * 5 + i]
            image, mask = _lesion_reference(item, [3, i] if c == 0 else [3, i, c], 1 if (i + c) % 2 == 0 else -1)
            assert torch.equal(got["image"][0], image) and torch.equal(got["mask"][0], mask), (c, i)
            assert got["case_id"] == item["case_id"] + "_simulated" + (f"_{c}" if c else "")
            if c == 0:
                assert torch.equal(one[i]["image"], got["image"]) and one[i]["case_id"] == got["case_id"]
    # each copy of a slice is its own lesion: no two masks of one slice coincide
    for i in range(5):
        masks = [copies[c * 5 + i]["mask"] for c in range(3)]
        assert not torch.equal(masks[0], masks[1]) and not torch.equal(masks[1], masks[2])


@pytest.mark.parametrize(("setting", "normals", "expected"), [
    ("auto", 38, 6), ("auto", 6, 8), ("auto", 1, 8), ("auto", 100, 2), ("auto", 199, 2), ("auto", 200, 1), ("auto", 5000, 1),
    (1, 38, 1), (3, 6, 3),
])  # fmt: skip
def test_lesion_copies_rule_known_answers(setting, normals, expected):
    from mama_monai.workflows.splits import lesion_copies

    assert lesion_copies(setting, normals) == expected


@pytest.mark.parametrize("bad", [0, -1, 2.5, "4", True, None, "Auto"])
def test_bad_lesion_copies_are_refused_naming_the_key_before_any_slice_is_loaded(bad, monkeypatch):
    from mama_monai.workflows import splits as splits_module

    def no_loading(*args, **kwargs):
        raise AssertionError("slices were loaded before the setting was checked")

    monkeypatch.setattr(splits_module, "load_case_slices", no_loading)
    message = rf"data#validation_lesion_copies must be 'auto' or an int >= 1 \(lesioned copies per held-out slice\), got {re.escape(repr(bad))}\."
    with pytest.raises(ValueError, match=message):
        _splits(**{"data#validation_lesion_copies": bad})


NODULE = {"data#validation_lesion_centres": [0.05, 0.357], "data#validation_lesion_enclosed": True,
          "data#validation_lesion_target": [0.643, 0.786], "data#validation_lesion_sign": "bright"}  # fmt: skip


def _lung_pixels(image):
    """Independently of the product: pixels at intensity 0.05-0.357 in a region of pixels below 0.357
    that does not touch the slice's border and covers >= 1 % of it (an aerated lung, not the air around the body)."""
    import numpy as np
    from scipy import ndimage

    regions, n = ndimage.label(image < 0.357)
    border = set(np.unique(np.concatenate([regions[0], regions[-1], regions[:, 0], regions[:, -1]]))) - {0}
    lungs = [k for k in range(1, n + 1) if k not in border and (regions == k).sum() >= 0.01 * image.size]
    return np.isin(regions, lungs) & (image > 0.05)


def test_nodule_lesions_from_the_config_are_bright_soft_tissue_centred_in_the_lungs_and_skip_slices_without(caplog):
    """The chest-CT recipe (README): each copy's lesion is centred in an enclosed aerated region,
    takes a soft-tissue intensity there, and only slices with a lung get copies (the log says so)."""
    import numpy as np

    caplog.set_level("INFO", logger="mama_monai.workflows.splits")
    splits = _splits(**NODULE, **{"data#validation_lesion_copies": 2})
    normals = [it for it in splits["val"] if it["label"] == 0]
    lesions = [it for it in splits["val"] if it["label"] == 1]
    with_lung = [it for it in normals if _lung_pixels(it["image"][0].numpy()).any()]
    assert 0 < len(with_lung) < len(normals) and len(lesions) == 2 * len(with_lung)
    skipped = len(normals) - len(with_lung)
    assert (f"{len(normals)} held-out normal slices + {len(lesions)} SIMULATED-lesion copies of them (2 per slice; {skipped} "
            "held-out slice(s) have no allowed lesion centre (data#validation_lesion_centres) and get none)") in caplog.text
    by_id = {it["case_id"]: it for it in normals}
    for got in lesions:
        source = by_id[got["case_id"].split("_simulated")[0]]["image"][0].numpy()
        image, mask = got["image"][0].numpy(), got["mask"][0].numpy() > 0
        centre = tuple(int(round(v)) for v in np.argwhere(mask).mean(axis=0))  # a disk's mask is symmetric about its centre
        assert _lung_pixels(source)[centre], (got["case_id"], centre)
        assert 0.643 - 1e-5 <= image[centre] <= 0.786 + 1e-5, (got["case_id"], image[centre])  # soft tissue, brighter than lung


@pytest.mark.parametrize(("key", "bad", "message"), [
    ("data#validation_lesion_target", [0.8, 0.6], "target must be a (min, max) intensity pair with min < max, got [0.8, 0.6]."),
    ("data#validation_lesion_centres", "lung", "centres must be a (min, max) intensity pair with min < max, got 'lung'."),
    ("data#validation_lesion_sign", "both", "sign must be one of ['alternate', 'bright', 'dark'], got 'both'."),
    ("data#validation_lesion_enclosed", "yes", "must be true or false, got 'yes'."),
])  # fmt: skip
def test_bad_lesion_options_are_refused_naming_the_key_before_any_slice_is_loaded(key, bad, message, monkeypatch):
    from mama_monai.workflows import splits as splits_module

    def no_loading(*args, **kwargs):
        raise AssertionError("slices were loaded before the setting was checked")

    monkeypatch.setattr(splits_module, "load_case_slices", no_loading)
    with pytest.raises(ValueError, match=re.escape(key) + ".*" + re.escape(message)):
        _splits(**{key: bad})
    with pytest.raises(ValueError, match=r"data#validation_lesion_target=\[0.6, 0.8\]: target \(the lesion's intensity\) needs mode 'tissue', got mode 'scale'"):
        _splits(**{"data#validation_lesion_target": [0.6, 0.8], "data#validation_lesion_mode": "scale"})
