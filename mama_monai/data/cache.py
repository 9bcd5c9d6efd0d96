"""A persistent on-disk cache of preprocessed images, in the pattern of MONAI's ``PersistentDataset``.

What is stored: the tensor that decoding + a preset's chain produce for one input (a volume or a
2D image, already resized to the model size), one ``<sha256>.pt`` file per input and settings.
The second run over the same data reads these files instead of decoding DICOM or gunzipping
NIfTI.

The key is MONAI's :func:`monai.data.utils.pickle_hashing` (sha256 of the pickled, key-sorted
dict) of everything that changes the result:

- the input's resolved path and a **signature** of its content on disk: ``(size, mtime_ns)`` of
  the file, or of every file under a DICOM folder (relative name, size, mtime_ns), so a replaced,
  edited, added or removed file never reads a stale entry;
- what was computed (``kind``: a preprocessed ``image`` or a nearest-neighbour ``mask``), the
  preset's name **and** the sha256 of its YAML file, the spatial size;
- the cache format and the MONAI and mama-monai versions (their transforms make the values).

The key dict is also stored in the file and compared on reading, so a hash collision or a copied
file is a miss, not a wrong image.

Why not ``monai.data.PersistentDataset`` itself (MONAI 1.6.1, checked): it hashes the data item
as given, so the signature above would have to be put into every item anyway; a truncated cache
file raises ``RuntimeError`` (only "Invalid magic number" and ``UnpicklingError`` are recomputed);
a ``MetaTensor`` with numpy metadata cannot be read with ``weights_only=True`` and is silently
recomputed on every access; its writes go to a temporary folder and ``shutil.move``, a copy
(not atomic) when ``/tmp`` is another file system. Here:

- reads use ``torch.load(..., weights_only=True)``: a cache file can hold only tensors and plain
  values (no pickled code is ever run);
- any unreadable or mismatching file (truncated, corrupt, foreign) is recomputed and rewritten,
  with a warning naming it; never a crash;
- writes go through :func:`mama_monai.atomic.atomic_write` (temporary file beside the target,
  then rename): concurrent workers or an interrupted run never leave half a file.

Entries are never deleted: remove the folder to reclaim the space.

Example:
    >>> cache = PreprocessedCache("/tmp/mama_cache")  # doctest: +SKIP
    >>> key = cache.key("ct.nii.gz", kind="image", preset="ct_lung", spatial_size=[228, 228])  # doctest: +SKIP
    >>> image, hit = cache.get_or_compute(key, lambda: expensive_load())  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import monai
import torch
from monai.data.utils import pickle_hashing

import mama_monai
from mama_monai.atomic import atomic_write

__all__ = ["PreprocessedCache", "check_cache_dir", "file_signature"]

#: bump when the content or layout of a cache file changes
CACHE_FORMAT = 2  # 2: volumes are cached in canonical (LPS) voxel order (mama_monai.data.orientation)


def check_cache_dir(cache_dir: str | os.PathLike | None, name: str = "cache_dir") -> Path | None:
    """``None`` or the cache folder as a ``Path`` (created when missing).

    Raises:
        ValueError: ``cache_dir`` is not a path, or names something that is not a folder; the
            message names the parameter ``name`` and the value.
    """
    if cache_dir is None:
        return None
    if not isinstance(cache_dir, (str, os.PathLike)) or str(cache_dir) == "":
        raise ValueError(f"{name} must be a folder path or null (no cache), got {cache_dir!r}.")
    path = Path(cache_dir).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name} must be a folder (created when missing) or null, got {str(cache_dir)!r}, which is a file.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{name} must be a folder that can be created, got {str(cache_dir)!r} ({err}).") from err
    return path


def file_signature(path: str | os.PathLike) -> list:
    """What changes when the input changes: ``[size, mtime_ns]`` of a file, or
    ``[[relative name, size, mtime_ns], ...]`` of every file under a folder (sorted, recursive,
    as DICOM series discovery reads them). A missing path raises ``FileNotFoundError``."""
    path = Path(path)
    if path.is_dir():
        rows = []
        for sub in sorted(p for p in path.rglob("*") if p.is_file()):
            st = sub.stat()
            rows.append([str(sub.relative_to(path)), st.st_size, st.st_mtime_ns])
        return rows
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _preset_digest(preset: str) -> str:
    from mama_monai.data.presets import preset_path

    return hashlib.sha256(preset_path(preset).read_bytes()).hexdigest()


class PreprocessedCache:
    """``<cache_dir>/<sha256>.pt`` files of preprocessed tensors (module docstring).

    Args:
        cache_dir: the folder; created when missing.

    Raises:
        ValueError: ``cache_dir`` exists and is not a folder, or cannot be created.
    """

    def __init__(self, cache_dir: str | os.PathLike) -> None:
        checked = check_cache_dir(cache_dir)
        if checked is None:
            raise ValueError("cache_dir must be a folder path, got None.")
        self.cache_dir = checked

    def key(self, path: str | os.PathLike, kind: str, spatial_size: Any, preset: str | None = None) -> dict[str, Any]:
        """The key dict of input ``path`` processed as ``kind`` (``"image"`` with ``preset``, or
        ``"mask"``) at ``spatial_size``. Reads the input's signature now (a stat per file)."""
        path = Path(path).resolve()
        return {
            "format": CACHE_FORMAT,
            "monai": monai.__version__,
            "mama_monai": mama_monai.__version__,
            "kind": str(kind),
            "path": str(path),
            "signature": file_signature(path),
            "preset": preset,
            "preset_sha256": None if preset is None else _preset_digest(preset),
            "spatial_size": [int(s) for s in spatial_size],
        }

    def file(self, key: dict[str, Any]) -> Path:
        """The cache file of ``key``: its MONAI ``pickle_hashing`` digest, ``.pt``."""
        return self.cache_dir / f"{pickle_hashing(key).decode('utf-8')}.pt"

    def get_or_compute(self, key: dict[str, Any], compute: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, bool]:
        """``(tensor, hit)``: the cached tensor of ``key``, or ``compute()`` stored under it.

        A cache file that cannot be read with ``weights_only=True``, is not this package's format
        or holds another key is recomputed and replaced, with a ``UserWarning`` naming it.
        """
        target = self.file(key)
        if target.is_file():
            try:
                stored = torch.load(target, map_location="cpu", weights_only=True)
                if not (isinstance(stored, dict) and isinstance(stored.get("tensor"), torch.Tensor)):
                    raise TypeError("not a mama-monai cache file (expected a dict with a tensor)")
                if stored.get("key") != key:
                    raise ValueError("it holds another input or settings")
                return stored["tensor"], True
            except Exception as err:  # corrupt, truncated, foreign: recompute, never crash
                message = " ".join(str(err).split())[:200]
                warnings.warn(
                    f"cache file {target} is unreadable ({type(err).__name__}: {message}); recomputing it.",
                    stacklevel=2,
                )
        tensor = compute()
        if type(tensor) is not torch.Tensor:  # a MetaTensor's metadata could not be read weights-only
            tensor = tensor.as_subclass(torch.Tensor)
        buffer = io.BytesIO()
        # clone: a view would save its whole storage
        torch.save({"key": key, "tensor": tensor.detach().cpu().clone(memory_format=torch.contiguous_format)}, buffer)
        atomic_write(target, lambda f: f.write(buffer.getvalue()))
        return tensor, False
