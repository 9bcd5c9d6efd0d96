"""PreprocessedCache: keys that change with the input and the settings, weights-only atomic files."""

from __future__ import annotations

import os

import pytest
import torch
from monai.data.utils import pickle_hashing

from mama_monai.data.cache import PreprocessedCache, check_cache_dir, file_signature


def test_folder_signature_changes_when_any_file_under_it_changes(tmp_path, dicom, ct_volume):
    files = dicom.write_series(tmp_path / "series" / "sub", ct_volume)
    folder = tmp_path / "series"
    before = file_signature(folder)
    assert len(before) == len(files) and file_signature(folder) == before
    stat = files[2].stat()
    os.utime(files[2], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # rewritten in place, same size
    touched = file_signature(folder)
    assert touched != before
    files[3].unlink()  # a slice removed
    assert len(file_signature(folder)) == len(files) - 1
    (folder / "extra").write_bytes(b"x")  # a file added
    assert len(file_signature(folder)) == len(files)


def test_key_holds_path_signature_preset_contents_and_size(tmp_path):
    image = tmp_path / "a.nii"
    image.write_bytes(b"0" * 10)
    cache = PreprocessedCache(tmp_path / "cache")
    key = cache.key(image, "image", [64, 64], "ct_lung")
    assert key["path"] == str(image.resolve()) and key["signature"][0] == 10 and key["spatial_size"] == [64, 64]
    assert len(key["preset_sha256"]) == 64 and key["kind"] == "image"
    assert cache.file(key).name == pickle_hashing(key).decode() + ".pt"
    others = [
        cache.key(image, "image", [32, 64], "ct_lung"),
        cache.key(image, "image", [64, 64], "ct_soft_tissue"),
        cache.key(image, "mask", [64, 64]),
    ]
    image.write_bytes(b"0" * 11)
    others.append(cache.key(image, "image", [64, 64], "ct_lung"))
    assert len({cache.file(k) for k in [key, *others]}) == 5


def test_files_are_weights_only_and_hold_their_key(tmp_path):
    cache = PreprocessedCache(tmp_path / "cache")
    (tmp_path / "a.png").write_bytes(b"png")
    key = cache.key(tmp_path / "a.png", "image", [4, 4], "cxr")
    calls = []
    value = torch.arange(16.0).reshape(1, 4, 4)[:, :2]  # a view: saved without its whole storage
    got, hit = cache.get_or_compute(key, lambda: calls.append(1) or value)
    assert not hit and got.equal(value)
    stored = torch.load(cache.file(key), weights_only=True)
    assert stored["key"] == key and stored["tensor"].equal(value) and stored["tensor"].untyped_storage().nbytes() == 32
    got, hit = cache.get_or_compute(key, lambda: calls.append(1) or value)
    assert hit and got.equal(value) and calls == [1]
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [cache.file(key).name]  # no temporary file left


def test_cache_dir_checks(tmp_path):
    assert check_cache_dir(None) is None
    assert check_cache_dir(tmp_path / "new" / "cache").is_dir()  # created
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"data#cache_dir must be a folder .* got '.*file', which is a file\."):
        check_cache_dir(tmp_path / "file", "data#cache_dir")
    with pytest.raises(ValueError, match=r"cache_dir must be a folder path or null \(no cache\), got 3\."):
        check_cache_dir(3)
    with pytest.raises(ValueError, match=r"cache_dir must be a folder path or null \(no cache\), got ''\."):
        check_cache_dir("")
