"""Manifest cases -> preprocessed 2D slices held in memory, ready for the engines.

Each image file (a volume or a 2D image) is loaded once with the preset's pinned reader, the
preset's intensity chain is applied to the whole image (so MRI percentiles are per volume) and the
image is resized in-plane to the model size; then every case of that file takes its slice. Masks
are resized with nearest-neighbour interpolation. A file that cannot be loaded is reported and its
cases skipped; a case whose own row is bad (``slice_index`` out of range, unreadable mask) fails
alone, named; the others go on, and every failed case is returned (:class:`CaseFailure`).

Files are decoded in parallel by a ``torch.utils.data.DataLoader`` over a MONAI ``Dataset`` of
files (``num_workers`` worker processes, one file per sample, no collation, results in file
order), and optionally read from a persistent on-disk cache of preprocessed images
(:class:`~mama_monai.data.cache.PreprocessedCache`, ``cache_dir``). Both give exactly the tensors of
serial, uncached loading. Worker processes reuse freed memory instead of faulting in fresh pages
for every large array (:func:`_keep_freed_memory`; 1.7x faster per core, measured). Slices are
plain ``torch.Tensor`` s (no ``MetaTensor`` metadata: the engines use only the values).
"""

from __future__ import annotations

import ctypes
import logging
import os
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage
import torch
from monai.data import Dataset, MetaTensor
from monai.transforms import Resize

from mama_monai.data.body_crop import BODY_BOX, crop_in_plane
from mama_monai.data.cache import PreprocessedCache, check_cache_dir
from mama_monai.data.orientation import to_canonical
from mama_monai.data.loading import load_image
from mama_monai.data.manifest import Manifest, ManifestCase
from mama_monai.data.preprocessing import Preprocessor
from mama_monai.data.simulated_lesions import simulate_lesions

__all__ = [
    "CaseFailure",
    "MAX_AUTO_WORKERS",
    "auto_num_workers",
    "check_num_workers",
    "load_case_slices",
    "simulated_anomalies",
]

logger = logging.getLogger(__name__)

#: ``num_workers=None`` uses at most this many loader processes (each holds one decoded volume,
#: a few hundred MB for a 512 x 512 x 300 CT, while it preprocesses it)
MAX_AUTO_WORKERS = 4


def _image_path(manifest: Manifest, relative: str) -> Path:
    return (Path(manifest.root) / relative).resolve()


def _take_slice(volume: torch.Tensor, index: int | None, case_id: str) -> torch.Tensor:
    if volume.ndim == 3:  # (C, W, H): a 2D image is its own slice
        return volume
    if index is None:
        raise ValueError(f"case {case_id!r}: the image is a volume, so slice_index is required, got None.")
    if not 0 <= index < volume.shape[-1]:
        raise ValueError(f"case {case_id!r}: slice_index must be in 0..{volume.shape[-1] - 1}, got {index}.")
    return volume[..., index]


def _plain(image: Any) -> torch.Tensor:
    """The values as a plain float32 tensor (a ``MetaTensor``'s storage, without its metadata)."""
    tensor = image.as_tensor() if isinstance(image, MetaTensor) else torch.as_tensor(image)
    return tensor.float()


def _describe(err: BaseException) -> str:
    message = " ".join(str(err).split())
    return f"{type(err).__name__}: {message}"


def check_num_workers(value: Any, name: str = "num_workers") -> int | None:
    """``None`` (automatic, :func:`auto_num_workers`) or an int >= 0; anything else is a ``ValueError``
    naming the parameter ``name``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(
            f"{name} must be an int >= 0 (0 = load the files in this process) or null (automatic: "
            f"min({MAX_AUTO_WORKERS}, CPU cores, files)), got {value!r}."
        )
    return int(value)


def auto_num_workers(n_files: int) -> int:
    """Loader processes for ``num_workers=None``: ``min(MAX_AUTO_WORKERS, usable CPU cores, n_files)``,
    and 0 (this process) when that is 1: one worker process would only add its start-up."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = min(MAX_AUTO_WORKERS, cores, n_files)
    return n if n >= 2 else 0


class _FileLoader:
    """One image file (and the masks its cases name) -> preprocessed tensors; never raises.

    The :class:`~mama_monai.data.preprocessing.Preprocessor` is built once, in the constructor
    (building a preset costs ~70 ms of ``ConfigParser`` work; it used to be built twice per file,
    which dominated the loading of 2D images). Called in this process or in a ``DataLoader``
    worker; there, warnings are recorded and returned for the parent to re-issue.
    """

    def __init__(self, preset: str, spatial_size: Sequence[int], cache_dir: Path | None, crop_to_body: bool = True) -> None:
        self.preprocess = Preprocessor(preset, spatial_size, crop_to_body)
        self.preset, self.spatial_size = preset, self.preprocess.spatial_size
        self.cache = None if cache_dir is None else PreprocessedCache(cache_dir)
        #: the body box of each image preprocessed here, with its loaded in-plane shape: [r0, r1, c0, c1, w, h]
        #: (the whole plane where the preset does not crop)
        self._boxes: dict[str, torch.Tensor] = {}
        #: the cache's kind of entry: a cropped and an uncropped image of one file are two entries
        self.image_kind = "image_cropped_to_body" if self.preprocess.crops else "image"

    def _image(self, path: str) -> torch.Tensor:
        image = self.preprocess({"image": path})["image"]
        shape = [int(s) for s in image.meta["spatial_shape"][:2]]  # the canonical grid as loaded
        box = image.meta.get(BODY_BOX, [0, shape[0] - 1, 0, shape[1] - 1])
        self._boxes[path] = torch.as_tensor([*box, *shape], dtype=torch.int64)
        return _plain(image)

    def _box(self, path: str) -> torch.Tensor:
        """The image's body box (:mod:`mama_monai.data.body_crop`; the whole plane without the crop)
        and loaded in-plane shape: kept from its preprocessing, or found again (the image came from
        the cache, the box did not)."""
        if path not in self._boxes:
            self._image(path)
        return self._boxes.pop(path)

    def _mask(self, path: str, box: torch.Tensor) -> torch.Tensor:
        mask = _plain(to_canonical(load_image(path)))  # the image's voxel order (LoadMedicalImaged)
        if tuple(mask.shape[1:3]) != tuple(box[4:].tolist()):  # resized alike, a mask of another grid would mislabel pixels
            why = " (its image is cropped to the body by those voxels)" if self.preprocess.crops else ""
            raise ValueError(
                f"mask {Path(path).name}: in-plane shape {tuple(mask.shape[1:3])}, its image's is {tuple(box[4:].tolist())}; "
                f"a mask must lie on its image's voxel grid{why}."
            )
        if self.preprocess.crops:  # the image's crop, in the image's voxels
            mask = crop_in_plane(mask, box[:4].tolist())
        size = list(self.spatial_size) + ([-1] if mask.ndim == 4 else [])
        return (_plain(Resize(size, mode="nearest")(mask)) > 0).float()

    def _cached(self, path: str, kind: str, compute, counts: dict[str, int]) -> torch.Tensor:
        if self.cache is None:
            return compute()
        key = self.cache.key(path, kind, self.spatial_size, self.preset if kind != "mask" else None)
        tensor, hit = self.cache.get_or_compute(key, compute)
        counts["hits" if hit else "misses"] += 1
        return tensor

    def _masks(self, path: str, mask_paths: Sequence[str], counts: dict[str, int]) -> dict[str, Any]:
        """Each mask of the image at ``path``, cropped as the image was; a bad mask is its error text."""
        if not mask_paths:
            return {}
        crops = self.preprocess.crops
        box = self._cached(path, "body_box_and_shape" if crops else "grid_shape", lambda: self._box(path), counts)
        kind = ("mask_in_box_" if crops else "mask_on_grid_") + "_".join(str(int(b)) for b in (box if crops else box[4:]))
        masks: dict[str, Any] = {}
        for mask_path in mask_paths:
            try:
                masks[mask_path] = self._cached(mask_path, kind, lambda p=mask_path: self._mask(p, box), counts)
            except Exception as err:
                masks[mask_path] = _describe(err)
        return masks

    def __call__(self, job: dict[str, Any]) -> dict[str, Any]:
        in_worker = torch.utils.data.get_worker_info() is not None
        result: dict[str, Any] = {"path": job["path"], "volume": None, "masks": {}, "error": None, "warnings": []}
        counts = result["counts"] = {"hits": 0, "misses": 0}
        with warnings.catch_warnings(record=in_worker) as caught:
            if in_worker:
                warnings.simplefilter("always")
            try:
                path = job["path"]
                result["volume"] = self._cached(path, self.image_kind, lambda: self._image(path), counts)
            except Exception as err:  # one bad file never stops the others
                result["error"] = _describe(err)
            if result["error"] is None:
                try:
                    result["masks"] = self._masks(path, job["masks"], counts)
                except Exception as err:  # the image's box could not be found again
                    result["masks"] = {m: _describe(err) for m in job["masks"]}
            self._boxes.pop(job["path"], None)
        if in_worker:
            result["warnings"] = [(w.category, str(w.message), w.filename, w.lineno) for w in caught]
        return result


def _as_is(batch: Any) -> Any:
    """``collate_fn`` of the file loader: the sample unchanged (no batching)."""
    return batch


def _keep_freed_memory() -> bool:
    """In a loader worker on glibc: serve allocations up to 1 GiB from the heap and keep freed
    memory for reuse (``mallopt`` ``M_MMAP_THRESHOLD`` 1 GiB, ``M_TRIM_THRESHOLD`` 2 GiB - 1).

    By default every array over 32 MB (a 512 x 512 x 64 float32 volume is 67 MB) is a fresh
    ``mmap`` whose pages the kernel faults in and zeroes, and MONAI's intensity transforms make
    five such arrays per volume: on the 2-core development machine a 67 MB subtraction took 71 ms
    that way and 17 ms reusing heap memory, and decode + preprocessing ran 1.7x faster
    (``docs/benchmarks.md``). Only the allocation strategy changes, never a value. The worker keeps
    its peak memory until it exits at the end of the load. Returns whether glibc accepted it.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
        return bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(libc.mallopt(m_trim_threshold, (1 << 31) - 1))
    except (OSError, AttributeError):  # not glibc: keep the default
        return False


def _worker_init(worker_id: int) -> None:
    """A loader process: one SimpleITK thread (torch already has one there: the workers are the
    parallelism) and glibc's allocator set to reuse freed memory (:func:`_keep_freed_memory`)."""
    import SimpleITK as sitk

    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(1)
    _keep_freed_memory()


def _load_files(loader: _FileLoader, jobs: list[dict[str, Any]], num_workers: int):
    """``loader(job)`` for every job, in order: in this process, or in ``num_workers`` processes."""
    if num_workers == 0:
        yield from (loader(job) for job in jobs)
        return
    files = torch.utils.data.DataLoader(
        Dataset(jobs, transform=loader),
        batch_size=None,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_as_is,
        worker_init_fn=_worker_init,
    )
    for result in files:
        for category, message, filename, lineno in result["warnings"]:
            warnings.warn_explicit(message, category, filename, lineno)
        yield result


def _to_decode(loader: _FileLoader, jobs: list[dict[str, Any]]) -> int:
    """How many of ``jobs`` have no cached image yet (all of them without a cache): from a filled
    cache one process reads faster than worker processes start (``benchmarks/loader.py``)."""
    if loader.cache is None:
        return len(jobs)
    missing = 0
    for job in jobs:
        try:
            key = loader.cache.key(job["path"], loader.image_kind, loader.spatial_size, loader.preset)
            missing += not loader.cache.file(key).is_file()
        except OSError:  # missing input: its worker reports it
            missing += 1
    return missing


class _Failed(Exception):
    """A failure already described by the file loader."""


@dataclass(frozen=True)
class CaseFailure:
    """A manifest case that could not be loaded.

    Attributes:
        case_id: the case.
        path: its image file.
        error: ``"<ExceptionType>: <message>"`` (one line).
    """

    case_id: str
    path: str
    error: str

    def to_json(self) -> dict[str, str]:
        """``{"case", "file", "reason"}``, as reports list it."""
        return {"case": self.case_id, "file": self.path, "reason": self.error}


def _case_item(manifest: Manifest, case: ManifestCase, result: dict[str, Any]) -> dict[str, Any]:
    """The slice (and mask) of one case from its loaded file; raises for a bad index or mask."""
    mask = None
    if case.mask is not None:
        got = result["masks"][str(_image_path(manifest, case.mask))]
        if isinstance(got, str):
            raise _Failed(got)
        mask = _take_slice(got, case.slice_index, case.case_id)[:1]
    image = _take_slice(result["volume"], case.slice_index, case.case_id)
    return {
        "image": image.contiguous(),
        "mask": torch.zeros_like(image[:1]) if mask is None else mask.contiguous(),
        "has_mask": mask is not None,
        "label": int(case.label),
        "case_id": case.case_id,
        "simulated": bool(case.simulated),
        "slice_index": -1 if case.slice_index is None else int(case.slice_index),
    }


def _file_items(
    manifest: Manifest, file_cases: Sequence[ManifestCase], result: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[CaseFailure]]:
    """Every case of one loaded file: a file error fails all of them, a bad row only itself."""
    items, failures = [], []
    for case in file_cases:
        try:
            if result["error"] is not None:
                raise _Failed(result["error"])
            items.append(_case_item(manifest, case, result))
        except Exception as err:  # one bad case never stops the others
            failures.append(CaseFailure(case.case_id, result["path"], err.args[0] if isinstance(err, _Failed) else _describe(err)))
    if result["error"] is not None:
        logger.warning("skipped %s (%d case(s)): %s", result["path"], len(file_cases), result["error"].split(": ", 1)[-1])
    else:
        for failure in failures:
            logger.warning("skipped case %s of %s: %s", failure.case_id, failure.path, failure.error.split(": ", 1)[-1])
    return items, failures


def _log_loading(loaded: int, total: int, failed: int, counts: dict[str, Any], stats: dict[str, Any] | None) -> None:
    """One log line for a loading run; ``counts`` (files, num_workers, cache hits/misses, seconds)
    into ``stats`` when it is a dict."""
    logger.info(
        "loaded %d of %d case(s) (%d failed) from %d file(s) with %d worker process(es) in %.1f s "
        "(cache: %d hit(s), %d miss(es))",
        loaded, total, failed, counts["files"], counts["num_workers"], counts["seconds"],
        counts["cache_hits"], counts["cache_misses"],
    )  # fmt: skip
    if stats is not None:
        stats.update(counts)


def _jobs_by_file(manifest: Manifest, cases: Sequence[ManifestCase]) -> tuple[dict[Path, list[ManifestCase]], list[dict]]:
    """The cases grouped by image file (first-seen order), and one decoding job per file: its
    path and the distinct mask files of its cases."""
    by_file: dict[Path, list[ManifestCase]] = defaultdict(list)
    for case in cases:
        by_file[_image_path(manifest, case.image)].append(case)
    jobs = []
    for path, file_cases in by_file.items():
        masks = dict.fromkeys(str(_image_path(manifest, c.mask)) for c in file_cases if c.mask is not None)
        jobs.append({"path": str(path), "masks": list(masks)})
    return by_file, jobs


def load_case_slices(
    manifest: Manifest,
    cases: Sequence[ManifestCase],
    preset: str,
    spatial_size: Sequence[int],
    num_workers: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    stats: dict[str, Any] | None = None,
    crop_to_body: bool = True,
) -> tuple[list[dict[str, Any]], list[CaseFailure]]:
    """Preprocessed slices of ``cases``.

    Args:
        manifest, cases: the cases to load, from ``manifest`` (its ``root`` resolves their paths).
        preset: a preprocessing preset name (:func:`~mama_monai.data.presets.list_presets`).
        spatial_size: model input size ``(H, W)``.
        num_workers: loader processes decoding files in parallel; ``0`` loads in this process;
            ``None`` (default) is :func:`auto_num_workers` of the files not in the cache yet
            (``min(4, CPU cores, files)``, 0 for one file or a filled cache). Never more than the
            number of files. The result is the same either way.
        cache_dir: folder of the persistent cache of preprocessed images (created when missing),
            or ``None`` (default): no cache. A hit skips decoding and preprocessing; the key holds
            the file's path, size and modification time, the preset's name and contents, the
            spatial size and whether the image is cropped to the body (:mod:`mama_monai.data.cache`).
        stats: if a dict, filled with ``files``, ``num_workers``, ``cache_hits``,
            ``cache_misses`` (files and masks) and ``seconds``.
        crop_to_body: the CT and MR presets' crop to the body (:mod:`mama_monai.data.body_crop`), masks alike.

    Returns:
        ``(items, failures)``: one dict per case in input order, with ``image`` ``(C, H, W)``,
        ``mask`` ``(1, H, W)`` (zeros where the case has none), ``has_mask``, ``label``,
        ``case_id``, ``simulated`` and ``slice_index``; and one :class:`CaseFailure` per case that
        failed, in input order: every case of a file that cannot be read, or the one case whose
        ``slice_index`` or mask is bad (the other cases of its file load).

    Raises:
        ValueError: an unknown ``preset``, a bad ``spatial_size``, ``num_workers`` or ``cache_dir``.
        RuntimeError: a worker process died (e.g. killed for memory): a decoder crash cannot be
            reported per file; ``num_workers=0`` shows it in this process.
    """
    start = time.perf_counter()
    num_workers = check_num_workers(num_workers)
    cache_path = check_cache_dir(cache_dir)
    loader = _FileLoader(preset, spatial_size, cache_path, crop_to_body)  # a bad preset or size fails here, once
    by_file, jobs = _jobs_by_file(manifest, cases)
    workers = auto_num_workers(_to_decode(loader, jobs)) if num_workers is None else min(num_workers, len(jobs))
    items: dict[str, dict[str, Any]] = {}
    failures: list[CaseFailure] = []
    hits = misses = 0
    for (path, file_cases), result in zip(by_file.items(), _load_files(loader, jobs, workers)):
        hits += result["counts"]["hits"]
        misses += result["counts"]["misses"]
        loaded, failed = _file_items(manifest, file_cases, result)
        items.update((item["case_id"], item) for item in loaded)
        failures += failed
    counts = {"files": len(jobs), "num_workers": workers, "cache_hits": hits, "cache_misses": misses}
    _log_loading(len(items), len(cases), len(failures), dict(counts, seconds=time.perf_counter() - start), stats)
    order = {c.case_id: i for i, c in enumerate(cases)}
    failures.sort(key=lambda f: order[f.case_id])
    return [items[c.case_id] for c in cases if c.case_id in items], failures


#: ``simulated_anomalies``' ``sign``: the lesion sign it gives (None: bright and dark alternating)
LESION_SIGNS: dict[str, int | None] = {"alternate": None, "bright": 1, "dark": -1}


#: ``enclosed`` centres: the least area of a hole, as a fraction of the slice (41 px at 64 x 64)
ENCLOSED_MIN_AREA = 0.01


def _intensity_range(name: str, value: Sequence[float]) -> tuple[float, float]:
    if isinstance(value, str) or len(value) != 2 or not float(value[0]) < float(value[1]):
        raise ValueError(f"{name} must be a (min, max) intensity pair with min < max, got {value!r}.")
    return float(value[0]), float(value[1])


def _lesion_centres(image: np.ndarray, low: float, high: float, enclosed: bool, foreground_threshold: float) -> np.ndarray:
    """Allowed lesion centres of one slice (:func:`simulated_anomalies`): intensity in (low, high),
    and if ``enclosed`` inside a hole of the tissue above ``high`` that covers at least
    ``ENCLOSED_MIN_AREA`` of the slice (a lung, not a pocket of bowel gas)."""
    allowed = (image > low) & (image < high)
    if enclosed:
        brighter = image >= high
        holes, n = ndimage.label(ndimage.binary_fill_holes(brighter) & ~brighter)
        areas = np.bincount(holes.ravel(), minlength=n + 1)
        big = np.flatnonzero(areas >= ENCLOSED_MIN_AREA * image.size)
        allowed &= np.isin(holes, big[big > 0])
    return allowed


def simulated_anomalies(
    items: Sequence[dict[str, Any]],
    seed: int,
    radius_fraction: Sequence[float] = (0.02, 0.06),
    mode: str = "tissue",
    foreground_threshold: float = 0.05,
    copies: int = 1,
    centres: Sequence[float] | None = None,
    enclosed: bool = False,
    target: Sequence[float] | None = None,
    sign: str = "alternate",
) -> list[dict[str, Any]]:
    """SIMULATED-lesion copies of normal slices (label 1, ``simulated=True``), for validation.

    Used where no real anomalies may be looked at before the test: model selection and threshold
    checks on held-out normal slices with one lesion inserted
    (:func:`~mama_monai.data.simulated_lesions.simulate_lesions`, ``mode`` ``"tissue"`` or
    ``"scale"``), its radius a fraction of the slice width, bright on even and dark on odd
    slices (both kinds are validated), seeded per slice.

    ``copies``: lesioned copies per slice, each its own draw (copy ``c`` of slice ``i`` is seeded
    by ``(seed, i)`` for ``c = 0``, as with one copy, and by ``(seed, i, c)`` otherwise; its sign
    alternates with ``i + c``), all of copy 0 first. One draw per slice makes a validation AUROC
    that moves with the draw: on the demo's 38 held-out LIDC normals its sd over draws was 0.026
    for one network (0.016-0.033 over 20 networks), on the brain task's 6 normals 0.097
    (0.071-0.137); 6 and 8 copies cut it to 0.012 and 0.028 (``benchmarks/validation_noise.py``;
    ``data#validation_lesion_copies``, :func:`mama_monai.workflows.splits.lesion_copies`).

    Where the lesions go and what they look like, for an anomaly whose anatomy is known
    (``benchmarks/validation_lesions.py``; a solid nodule in aerated lung, ``ct_lung`` window:
    ``centres`` (0.05, 0.357), ``enclosed``, ``target`` (0.643, 0.786), ``sign`` ``"bright"``):
    ``centres``, the (min, max) intensity of allowed centres, exclusive (default
    (``foreground_threshold``, inf)); ``enclosed``, centres also in a hole of the tissue brighter
    than ``centres``' max (the lungs inside the chest wall, not the air or the partial-volume rim
    around the body); ``target``, ``"tissue"`` mode only, the (min, max) intensity the lesion
    takes, drawn uniformly (default: a value of the slice's own foreground); ``sign``,
    ``"alternate"`` (bright on even ``i + c``), ``"bright"`` or ``"dark"``. With ``centres``
    given, a slice with no allowed centre gets no copy; without, a slice with nothing above
    ``foreground_threshold`` takes its centre anywhere above 10 % of its maximum.
    """
    low, high, target_range = _check_lesion_options(copies, mode, foreground_threshold, centres, target, sign)
    out = []
    for c, (i, item) in ((c, pair) for c in range(copies) for pair in enumerate(items)):
        rng = np.random.default_rng([seed, i] if c == 0 else [seed, i, c])
        image = item["image"][0].numpy()
        width = image.shape[-1]
        radius = (max(1.5, radius_fraction[0] * width), max(2.0, radius_fraction[1] * width))
        foreground = _lesion_centres(image, low, high, enclosed, foreground_threshold)
        if centres is not None and not foreground.any():
            continue  # no allowed centre (a slice below the lungs): no copy
        lesioned, mask, _ = simulate_lesions(
            image, rng, n=1, radius_px=radius, sign=LESION_SIGNS[sign] or (1 if (i + c) % 2 == 0 else -1),
            foreground=foreground if foreground.any() else None, mode=mode, target_range=target_range,
        )  # fmt: skip
        new = dict(item)
        new["image"] = torch.from_numpy(np.ascontiguousarray(lesioned)).float()[None].expand_as(item["image"]).clone()
        new["mask"] = torch.from_numpy(np.ascontiguousarray(mask)).float()[None]
        new.update(has_mask=True, label=1, simulated=True, case_id=f"{item['case_id']}_simulated" + (f"_{c}" if c else ""))
        out.append(new)
    return out


def _check_lesion_options(
    copies: int, mode: str, foreground_threshold: float, centres: Sequence[float] | None, target: Sequence[float] | None, sign: str,
) -> tuple[float, float, tuple[float, float] | None]:
    """:func:`simulated_anomalies`' options checked: the centres' (low, high) and the target range."""
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise ValueError(f"copies must be an int >= 1 (lesioned copies per slice), got {copies!r}.")
    if sign not in LESION_SIGNS:
        raise ValueError(f"sign must be one of {list(LESION_SIGNS)}, got {sign!r}.")
    if target is not None and mode != "tissue":
        raise ValueError(f"target (the lesion's intensity) needs mode 'tissue', got mode {mode!r}.")
    low, high = (foreground_threshold, np.inf) if centres is None else _intensity_range("centres", centres)
    return low, high, None if target is None else _intensity_range("target", target)
