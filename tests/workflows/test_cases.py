"""load_case_slices: worker processes and the persistent cache give the serial result, on real demo data."""

from __future__ import annotations

import logging
import os
import pickle
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

import mama_monai.data.case_slices as cases_module
from mama_monai.data import loading, presets
from mama_monai.data.demo import demo_manifest
from mama_monai.data.manifest import Manifest, ManifestCase
from mama_monai.data.case_slices import auto_num_workers, load_case_slices
from mama_monai.workflows.config import workflow_config
from mama_monai.workflows.distributed import DistributedContext
from mama_monai.workflows.splits import prepare_splits
from mama_monai.workflows.training import _loader

SIZE = (32, 32)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """The real demo volumes (LIDC CT + nodule mask, MNI T1 and its simulated-lesion copy + mask),
    a 2D PNG and an unreadable file, in one folder."""
    root = tmp_path_factory.mktemp("cases")
    for name in ("lidc", "brain"):
        src = Path(demo_manifest(name).root)
        for f in src.glob("*.nii.gz"):
            shutil.copy(f, root / f"{name}_{f.name}")
    pixels = np.random.default_rng(0).integers(0, 255, (70, 50), dtype=np.uint8)
    Image.fromarray(pixels).save(root / "xray.png")
    (root / "broken.nii.gz").write_bytes(b"not a NIfTI file")
    return root


def _cases() -> list[ManifestCase]:
    """Cases of five files, interleaved (order must survive the workers); one bad slice index in the
    middle of a file's rows (the rows after it must still load)."""
    c = ManifestCase
    return [
        c("ct40", "lidc_ct.nii.gz", 0, slice_index=40),
        c("t1_20", "brain_t1.nii.gz", 0, slice_index=20),
        c("ct87_mask", "lidc_ct.nii.gz", 1, mask="lidc_nodule_mask.nii.gz", slice_index=87),
        c("broken", "broken.nii.gz", 0, slice_index=0),
        c("xray", "xray.png", 0),
        c("t1_out_of_range", "brain_t1.nii.gz", 0, slice_index=999),
        c("sim30", "brain_t1_simulated_lesions.nii.gz", 1, mask="brain_simulated_lesion_mask.nii.gz", slice_index=30, simulated=True),
        c("ct5", "lidc_ct.nii.gz", 0, slice_index=5),
        c("t1_40", "brain_t1.nii.gz", 0, slice_index=40),
    ]


def _manifest(root: Path) -> Manifest:
    return Manifest(dataset="cases", root=str(root), cases=_cases())


def _load(root: Path, **kwargs):
    manifest = _manifest(root)
    return load_case_slices(manifest, manifest.cases, "ct_lung", SIZE, **kwargs)


def _assert_same(a: list[dict], b: list[dict]) -> None:
    assert [it["case_id"] for it in a] == [it["case_id"] for it in b]
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for key in x:
            if isinstance(x[key], torch.Tensor):
                assert type(x[key]) is torch.Tensor and type(y[key]) is torch.Tensor  # no MetaTensor left
                assert x[key].dtype == y[key].dtype and torch.equal(x[key], y[key]), (x["case_id"], key)
            else:
                assert x[key] == y[key]


@pytest.fixture(scope="module")
def serial(data_root):
    return _load(data_root, num_workers=0)


def test_serial_loading_reports_bad_files_and_keeps_the_others(serial, data_root):
    items, failures = serial
    # a bad row fails alone: t1_40, after the out-of-range row of the same file, still loads
    assert [it["case_id"] for it in items] == ["ct40", "t1_20", "ct87_mask", "xray", "sim30", "ct5", "t1_40"]
    assert [(f.case_id, Path(f.path).name) for f in failures] == [
        ("broken", "broken.nii.gz"),
        ("t1_out_of_range", "brain_t1.nii.gz"),
    ]  # in case order, one per failed case
    errors = {f.case_id: f.error for f in failures}
    assert errors["broken"].startswith("ImageLoadError: ") and "cannot read NIfTI" in errors["broken"]
    assert errors["t1_out_of_range"].startswith("ValueError: case 't1_out_of_range': slice_index must be in 0..")
    assert failures[1].to_json() == {"case": "t1_out_of_range", "file": failures[1].path, "reason": errors["t1_out_of_range"]}
    by_id = {it["case_id"]: it for it in items}
    assert by_id["ct40"]["image"].shape == (1, *SIZE) and by_id["xray"]["image"].shape == (1, *SIZE)
    assert by_id["ct87_mask"]["has_mask"] and by_id["ct87_mask"]["mask"].sum() > 0  # the real nodule
    assert by_id["sim30"]["simulated"] and not by_id["ct40"]["has_mask"]
    assert not torch.equal(by_id["t1_40"]["image"], by_id["t1_20"]["image"])


def test_the_log_counts_loaded_and_failed_cases_truly(data_root, caplog):
    with caplog.at_level(logging.INFO, logger="mama_monai.data.case_slices"):
        _load(data_root, num_workers=0)
    assert "loaded 7 of 9 case(s) (2 failed) from 5 file(s)" in caplog.text
    assert "skipped case t1_out_of_range of" in caplog.text and "slice_index must be in 0.." in caplog.text


def test_one_bad_mask_fails_only_the_cases_that_name_it(data_root):
    c = ManifestCase
    cases = [
        c("ct40", "lidc_ct.nii.gz", 0, slice_index=40),
        c("ct87_bad_mask", "lidc_ct.nii.gz", 1, mask="broken.nii.gz", slice_index=87),
        c("ct87_mask", "lidc_ct.nii.gz", 1, mask="lidc_nodule_mask.nii.gz", slice_index=87),
    ]
    items, failures = load_case_slices(Manifest("cases", str(data_root), cases), cases, "ct_lung", SIZE, num_workers=0)
    assert [it["case_id"] for it in items] == ["ct40", "ct87_mask"]
    assert [f.case_id for f in failures] == ["ct87_bad_mask"] and "cannot read NIfTI" in failures[0].error


def test_worker_processes_give_the_serial_result_in_order(serial, data_root, caplog):
    stats: dict = {}
    with caplog.at_level(logging.WARNING):
        items, failures = _load(data_root, num_workers=2, stats=stats)
    _assert_same(items, serial[0])
    assert failures == serial[1]  # same CaseFailure(case_id, path, error), same order
    assert stats["num_workers"] == 2 and stats["files"] == 5
    assert "skipped" in caplog.text and "broken.nii.gz" in caplog.text


def test_automatic_worker_count():
    cores = len(os.sched_getaffinity(0))
    assert auto_num_workers(1) == 0  # one file: no process to start
    assert auto_num_workers(100) == (min(4, cores) if min(4, cores) >= 2 else 0)
    assert auto_num_workers(2) == (2 if cores >= 2 else 0)


def _count_decodes(monkeypatch) -> list[str]:
    """Every decode of an image or mask file (LoadMedicalImaged and the mask path call load_image)."""
    calls: list[str] = []
    original = loading.load_image

    def counting(path, *args, **kwargs):
        calls.append(Path(path).name)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(loading, "load_image", counting)
    monkeypatch.setattr(cases_module, "load_image", counting)
    return calls


def test_cache_hit_gives_identical_tensors_without_decoding(serial, data_root, tmp_path, monkeypatch):
    decodes = _count_decodes(monkeypatch)
    stats: dict = {}
    first = _load(data_root, num_workers=0, cache_dir=tmp_path / "cache", stats=stats)
    assert sorted(decodes) == sorted(
        ["lidc_ct.nii.gz", "lidc_nodule_mask.nii.gz", "brain_t1.nii.gz", "broken.nii.gz", "xray.png",
         "brain_t1_simulated_lesions.nii.gz", "brain_simulated_lesion_mask.nii.gz"]
    )  # fmt: skip
    # 4 good images + 2 masks + the body boxes of the 2 images with masks (ct_lung crops; a mask is cropped as its image); the broken file is not cached
    assert stats["cache_hits"] == 0 and stats["cache_misses"] == 8
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 8
    decodes.clear()
    second = _load(data_root, num_workers=0, cache_dir=tmp_path / "cache", stats=stats)
    assert decodes == ["broken.nii.gz"]  # only the file that never loaded is tried again
    assert stats["cache_hits"] == 8 and stats["cache_misses"] == 0
    for run in (first, second):
        _assert_same(run[0], serial[0])
        assert run[1] == serial[1]
    # worker processes read the same cache
    third = _load(data_root, num_workers=2, cache_dir=tmp_path / "cache", stats=stats)
    assert stats["cache_hits"] == 8 and stats["cache_misses"] == 0
    _assert_same(third[0], serial[0])


def _one(root: Path, name: str = "brain_t1.nii.gz", preset: str = "mri_t1", size=SIZE, **kwargs):
    case = ManifestCase("c", name, 0, slice_index=30)
    manifest = Manifest(dataset="one", root=str(root), cases=[case])
    items, failures = load_case_slices(manifest, [case], preset, size, num_workers=0, **kwargs)
    assert not failures
    return items[0]["image"]


def test_cache_misses_after_the_file_preset_or_size_changes(data_root, tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(data_root / "brain_t1.nii.gz", root / "brain_t1.nii.gz")
    cache = tmp_path / "cache"
    decodes = _count_decodes(monkeypatch)
    reference = _one(root, cache_dir=cache)
    assert _one(root, cache_dir=cache).equal(reference) and len(decodes) == 1  # a hit

    # the file replaced by other content: a miss, and the new values
    image = nib.load(root / "brain_t1.nii.gz")
    flipped = nib.Nifti1Image(np.asanyarray(image.dataobj)[::-1].copy(), image.affine)
    nib.save(flipped, root / "brain_t1.nii.gz")
    changed = _one(root, cache_dir=cache)
    assert len(decodes) == 2 and changed.equal(_one(root)) and not changed.equal(reference)
    # the same bytes, only a new modification time: a miss too
    stat = (root / "brain_t1.nii.gz").stat()
    os.utime(root / "brain_t1.nii.gz", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    _one(root, cache_dir=cache)
    assert len(decodes) == 4  # (the uncached reference above decoded once more)

    # another spatial size, another preset: misses
    assert _one(root, size=(24, 24), cache_dir=cache).shape == (1, 24, 24) and len(decodes) == 5
    _one(root, preset="mri_zscore", cache_dir=cache)
    assert len(decodes) == 6

    # the same preset name with other contents (package data edited): a miss and the new values
    folder = tmp_path / "presets"
    shutil.copytree(presets._folder(), folder)
    monkeypatch.setattr(presets, "_folder", lambda: folder)
    before = _one(root, cache_dir=cache)
    assert len(decodes) == 6  # unchanged copy: a hit
    text = (folder / "mri_t1.yaml").read_text()
    (folder / "mri_t1.yaml").write_text(text.replace("upper: 99.5", "upper: 90.0"))
    after = _one(root, cache_dir=cache)
    assert len(decodes) == 7 and not after.equal(before)


class _Evil:
    """Unpickling it would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_corrupt_cache_files_are_recomputed_with_a_warning(data_root, tmp_path, num_workers):
    root = tmp_path / "data"
    root.mkdir()
    for name in ("brain_t1.nii.gz", "brain_t1_simulated_lesions.nii.gz"):
        shutil.copy(data_root / name, root / name)
    cases = [ManifestCase("a", "brain_t1.nii.gz", 0, slice_index=30), ManifestCase("b", "brain_t1_simulated_lesions.nii.gz", 0, slice_index=30)]
    manifest = Manifest(dataset="two", root=str(root), cases=cases)
    cache = tmp_path / "cache"
    reference, _ = load_case_slices(manifest, cases, "mri_t1", SIZE, num_workers=0, cache_dir=cache)
    first, second = sorted(cache.glob("*.pt"))
    first.write_bytes(first.read_bytes()[:100])  # truncated
    with open(second, "wb") as f:  # a pickle that would run code if loaded without weights_only
        pickle.dump(_Evil(tmp_path / "code_was_run"), f, protocol=2)
    stats: dict = {}
    with pytest.warns(UserWarning, match=r"cache file .*\.pt is unreadable .* recomputing it") as record:
        items, failures = load_case_slices(manifest, cases, "mri_t1", SIZE, num_workers=num_workers, cache_dir=cache, stats=stats)
    assert len([w for w in record if "unreadable" in str(w.message)]) == 2
    assert not failures and stats["cache_misses"] == 2
    _assert_same(items, reference)
    assert not (tmp_path / "code_was_run").exists()
    # rewritten: the next run hits
    load_case_slices(manifest, cases, "mri_t1", SIZE, num_workers=0, cache_dir=cache, stats=stats)
    assert stats["cache_hits"] == 2 and stats["cache_misses"] == 0


def test_foreign_torch_file_in_the_cache_is_a_miss(data_root, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(data_root / "brain_t1.nii.gz", root / "brain_t1.nii.gz")
    cache = tmp_path / "cache"
    reference = _one(root, cache_dir=cache)
    (entry,) = cache.glob("*.pt")
    torch.save({"key": {"other": 1}, "tensor": torch.zeros(1)}, entry)  # readable, another key
    with pytest.warns(UserWarning, match="holds another input or settings"):
        assert _one(root, cache_dir=cache).equal(reference)


@pytest.mark.parametrize("value", [-1, 1.5, True, "2"])
def test_bad_num_workers_is_refused(data_root, value):
    with pytest.raises(ValueError, match=rf"num_workers must be an int >= 0 .* got {value!r}\."):
        _load(data_root, num_workers=value)


def test_cache_dir_that_is_a_file_is_refused(data_root, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"cache_dir must be a folder .* got '.*file', which is a file\."):
        _load(data_root, cache_dir=tmp_path / "file")


def test_config_keys_are_named_in_errors(tiny, tmp_path):
    with pytest.raises(ValueError, match=r"data#num_workers must be an int >= 0 .* got -2\."):
        prepare_splits(workflow_config("autoencoder", overrides={**tiny.overrides, "data#num_workers": -2}))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"data#cache_dir must be a folder"):
        prepare_splits(workflow_config("autoencoder", overrides={**tiny.overrides, "data#cache_dir": str(tmp_path / "file")}))


def test_prepare_splits_uses_the_config_keys(tiny, tmp_path):
    overrides = {**tiny.overrides, "data#num_workers": 0, "data#cache_dir": str(tmp_path / "cache")}
    plain = prepare_splits(workflow_config("autoencoder", overrides=tiny.overrides))
    cached = prepare_splits(workflow_config("autoencoder", overrides=overrides))
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 4  # the demo CT, its body box, its nodule mask and the second CT
    for part in ("train", "val", "test"):
        _assert_same(cached[part], plain[part])


def test_training_batches_are_pinned_only_for_cuda():
    items = [{"image": torch.zeros(1, 8, 8), "label": 0} for _ in range(4)]
    assert _loader(items, 2, True, DistributedContext(device=torch.device("cuda")), drop_last=True).pin_memory
    assert not _loader(items, 2, True, DistributedContext(), drop_last=True).pin_memory


def test_automatic_workers_only_for_files_not_in_the_cache(data_root, tmp_path):
    stats: dict = {}
    cold = _load(data_root, cache_dir=tmp_path / "cache", stats=stats)
    assert stats["num_workers"] == auto_num_workers(5)  # five image files to decode
    warm = _load(data_root, cache_dir=tmp_path / "cache", stats=stats)
    assert stats["num_workers"] == auto_num_workers(1) == 0  # only the broken file is left: this process
    _assert_same(warm[0], cold[0])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_loader_workers_keep_freed_memory_on_glibc():
    # in a fresh interpreter: the setting is process-wide, and only loader workers get it
    code = "from mama_monai.data.case_slices import _keep_freed_memory as k; print(k())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


@pytest.mark.parametrize(("name", "preset", "image", "index"), [("lidc", "ct_lung", "ct.nii.gz", 87), ("brain", "mri_t1", "t1.nii.gz", 30)])
def test_slices_equal_the_preset_chain_applied_by_hand(name, preset, image, index):
    """The loader's result is the preset's own MONAI chain on the whole volume, sliced: bit for bit."""
    manifest = demo_manifest(name)
    case = ManifestCase("c", image, 0, slice_index=index)
    items, failures = load_case_slices(manifest, [case], preset, SIZE, num_workers=0)
    path = str(Path(manifest.root) / image)
    data = presets.get_preset(preset, SIZE, 2, with_loader=True).transforms[0]({"image": path})
    volume = presets.get_preset(preset, SIZE, 3)(data)["image"]
    expected = volume.as_tensor().float()[..., index]
    assert not failures and items[0]["image"].dtype == torch.float32 and torch.equal(items[0]["image"], expected)
