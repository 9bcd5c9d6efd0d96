"""Benchmark the way in: slices/s per core and with loader workers, the persistent cache, the batch rate.

A synthetic CT series (``--slices`` × 512 × 512 int16 by default, a smooth body-like phantom plus
noise, written with pydicom in a temporary folder, file names shuffled) and the same volume as
NIfTI (``.nii.gz`` and ``.nii``) are loaded the way the pipelines load them:

1. **one core, scoring path**: :func:`mama_monai.data.loading.load_image` (series discovery and
   validation, SimpleITK/GDCM or nibabel decode, MONAI ``MetaTensor``) = *decode*; then the
   ``ct_lung`` preset on the volume (HU window, in-plane resize to ``--size``) and
   :func:`mama_monai.data.slicing.slice_volume` = *decode + preprocess + slice*.
2. **training path** (:func:`mama_monai.data.case_slices.load_case_slices`, every slice of
   ``--files`` copies of the volume as manifest cases): in one process (``num_workers=0``, over at
   most 4 of the files) and with ``--workers`` loader processes; the ratio of the rates is the
   measured scaling.
3. **in-memory batches**: the training ``DataLoader`` (``workflows.training._loader``, batch
   ``--batch`` of 1 × ``--size`` × ``--size`` slices) in images/s, plain tensors (what
   ``load_case_slices`` gives now) and ``MetaTensor`` s (what it gave before), and MONAI's
   ``ThreadDataLoader``; with CUDA, also pinned + ``non_blocking`` copies to the GPU. Then the GPU
   rates of the speed issue are set against the measured rates.
4. **persistent cache** (``cache_dir``): the training-path load with workers, without cache and
   filling an empty cache (miss + write), then from the filled cache in one process (hit rate
   from the loader's stats) and with workers.

Each table is printed as soon as it is measured, so a run cut short by a time limit keeps the
tables before it.

One core: ``torch.set_num_threads(1)`` and SimpleITK's global thread count set to 1 in this
process (loader workers get the same). Each figure is the median of ``--repeats`` runs after one
warm-up (the page cache is warm: this measures decoding, not the disk). On a shared machine run it
under a lock so that other benchmarks do not overlap it::

    flock /tmp/mama_bench.lock python benchmarks/loader.py          # 64 slices of 512 x 512, 3 repeats
    python benchmarks/loader.py --slices 16 --files 2 --repeats 1   # quick look
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import SimpleITK as sitk
import torch
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure this checkout's code, installed or not

# benchmarks/machine.py: the script's folder is on sys.path
from machine import cpu_model
from monai.data import Dataset, MetaTensor, ThreadDataLoader

from mama_monai.data.loading import load_image
from mama_monai.data.manifest import Manifest, ManifestCase
from mama_monai.data.presets import get_preset
from mama_monai.data.slicing import slice_volume
from mama_monai.data.case_slices import load_case_slices
from mama_monai.workflows.distributed import DistributedContext
from mama_monai.workflows.training import _loader

#: one H200, paper configuration 228 x 228, bf16, batch 8 (docs/benchmarks.md), and the issue's targets
GPU_RATES = {"inference": (277, 1000), "training": (62, 250)}


def phantom(slices: int, size: int, seed: int = 0) -> np.ndarray:
    """Stored values (slices, rows, columns), int16, HU + 1024: air, a body ellipse, two lungs, noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    hu = np.full((size, size), -1000.0)
    hu[(x / 0.85) ** 2 + (y / 0.65) ** 2 < 1] = 40.0
    for cx in (-0.4, 0.4):
        hu[((x - cx) / 0.3) ** 2 + (y / 0.45) ** 2 < 1] = -850.0
    volume = np.repeat(hu[None], slices, axis=0) + rng.normal(0, 20, (slices, size, size))
    return np.clip(volume + 1024, 0, 4095).astype(np.int16)


def write_series(folder: Path, volume: np.ndarray, spacing=(0.7, 0.7, 1.25)) -> None:
    """A CT series with shuffled file names, one file per slice."""
    series_uid, study_uid = generate_uid(), generate_uid()
    order = np.random.default_rng(1).permutation(volume.shape[0])
    for k in range(volume.shape[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"f{order[k]:04d}"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = study_uid, series_uid, "CT"
        ds.Rows, ds.Columns = volume.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelSpacing = [spacing[0], spacing[1]]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-180.0, -180.0, k * spacing[2]]
        ds.InstanceNumber = int(order[k]) + 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = volume[k].tobytes()
        ds.save_as(folder / f"f{order[k]:04d}", enforce_file_format=True)


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its reaped children (loader workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def median_times(run: Callable[[], object], repeats: int, setup: Callable[[], object] | None = None) -> tuple[float, float]:
    """Median wall time and median CPU time (all processes) of ``run()`` over ``repeats`` runs
    after one warm-up; ``setup()`` before each, untimed."""
    if setup is not None:
        setup()
    run()  # warm-up: imports, page cache
    walls, cpus = [], []
    for _ in range(repeats):
        if setup is not None:
            setup()
        cpu, start = _cpu_seconds(), time.perf_counter()
        run()
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu_seconds() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def median_seconds(run: Callable[[], object], repeats: int, setup: Callable[[], object] | None = None) -> float:
    """Median wall time of ``run()`` (:func:`median_times`)."""
    return median_times(run, repeats, setup)[0]


def batch_rate(loader, epochs: int, device: torch.device | None = None) -> float:
    """Images/s of iterating ``loader`` (after one warm-up epoch), optionally copying each batch to
    ``device`` (pinned memory, ``non_blocking``)."""

    def one_epoch() -> int:
        n = 0
        for batch in loader:
            image = batch["image"]
            if device is not None:
                image = image.to(device, non_blocking=True)
            n += image.shape[0]
        if device is not None:
            torch.cuda.synchronize(device)
        return n

    one_epoch()
    start, n = time.perf_counter(), 0
    for _ in range(epochs):
        n += one_epoch()
    return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=64, help="slices in the synthetic volume (default 64)")
    parser.add_argument("--matrix", type=int, default=512, help="rows = columns (default 512)")
    parser.add_argument("--size", type=int, default=228, help="model input H = W for the preset (default 228)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per row (median; default 3)")
    parser.add_argument(
        "--files", type=int, default=8, help="copies of each volume in the training-path manifest (default 8; one process reads at most 4)"
    )
    parser.add_argument("--workers", type=int, default=2, help="loader worker processes to compare with one (default 2)")
    parser.add_argument("--batch", type=int, default=8, help="batch size of the in-memory batch rate (default 8)")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(1)
    preset = get_preset("ct_lung", spatial_size=(args.size, args.size), spatial_dims=3)
    size = (args.size, args.size)
    out = lambda *line: print(*line, flush=True)  # tables appear as they are measured: a timeout keeps them
    cpu_name = cpu_model()
    cores = len(os.sched_getaffinity(0))
    out(
        f"Data loading: {args.slices} slices of {args.matrix}x{args.matrix} int16, ct_lung preset to "
        f"{args.size}x{args.size}, median of {args.repeats}; {args.files} files per input in the training path"
    )
    out(
        f"CPU: {cpu_name}, {cores} usable cores; torch {torch.__version__}, SimpleITK {sitk.Version.VersionString()}, "
        f"pydicom {pydicom.__version__}, Python {platform.python_version()}"
    )
    out(f"Load average (1 min) at the start: {os.getloadavg()[0]:.2f} (above 0: other processes share the {cores} cores)")
    volume = phantom(args.slices, args.matrix)
    inputs = [
        ("DICOM series (uncompressed)", "series{}"),
        ("NIfTI .nii.gz (int16)", "volume{}.nii.gz"),
        ("NIfTI .nii (int16)", "volume{}.nii"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        hu = (volume.astype(np.int16) - 1024).transpose(2, 1, 0)  # (x, y, z)
        affine = np.diag([-0.7, -0.7, 1.25, 1.0])
        for k in range(args.files):  # distinct files (own UIDs, own bytes on disk): no sharing between copies
            (root / f"series{k}").mkdir()
            write_series(root / f"series{k}", volume)
            nib.save(nib.Nifti1Image(hu, affine), root / f"volume{k}.nii.gz")
            nib.save(nib.Nifti1Image(hu, affine), root / f"volume{k}.nii")

        def loader(pattern: str, files: int):
            cases = [ManifestCase(f"{k}_{z}", pattern.format(k), 0, slice_index=z) for k in range(files) for z in range(args.slices)]
            manifest = Manifest(dataset="bench", root=str(root), cases=cases)

            def load(workers: int, cache: Path | None = None, stats: dict | None = None) -> None:
                items, failures = load_case_slices(
                    manifest, cases, "ct_lung", size, num_workers=workers, cache_dir=cache, stats=stats
                )
                assert len(items) == len(cases) and not failures

            return load, len(cases)

        out()
        out("One core, scoring path (load_image; + preset + slice_volume):")
        out()
        out("| input | decode (slices/s) | decode + preprocess + slice (slices/s) | the same, per CPU-second | s per volume (full) |")
        out("| --- | ---: | ---: | ---: | ---: |")
        per_cpu = []
        for name, pattern in inputs:
            path = root / pattern.format(0)
            decode = median_seconds(lambda p=path: load_image(p), args.repeats)
            full, full_cpu = median_times(lambda p=path: slice_volume(preset({"image": load_image(p)})), args.repeats)
            per_cpu.append(args.slices / full_cpu)
            out(f"| {name} | {args.slices / decode:.0f} | {args.slices / full:.0f} | {args.slices / full_cpu:.0f} | {full:.2f} |")

        few = min(args.files, 4)
        out()
        out(
            f"Training path (load_case_slices), slices/s of wall time and per CPU-second: one process over {few} files, "
            f"{args.workers} loader workers over {args.files} files:"
        )
        out()
        out(f"| input | 1 process | per CPU-second | {args.workers} loader workers | per CPU-second (all processes) | scaling (wall) |")
        out("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, pattern in inputs:
            load_few, n_few = loader(pattern, few)
            load_all, n_all = loader(pattern, args.files)
            one, one_cpu = median_times(lambda f=load_few: f(0), args.repeats)
            many, many_cpu = median_times(lambda f=load_all: f(args.workers), args.repeats)
            out(
                f"| {name} | {n_few / one:.0f} | {n_few / one_cpu:.0f} | {n_all / many:.0f} | {n_all / many_cpu:.0f} | "
                f"{(n_all / many) / (n_few / one):.2f}x |"
            )

        # in-memory batches, as the training loop draws them
        rng = torch.Generator().manual_seed(0)
        plain = [{"image": torch.rand(1, args.size, args.size, generator=rng), "label": 0} for _ in range(64 * args.batch)]
        meta = [{"image": MetaTensor(it["image"]), "label": 0} for it in plain]
        cpu = DistributedContext()
        out()
        out(f"In-memory training batches (batch {args.batch} of 1x{args.size}x{args.size}, shuffled), images/s:")
        out()
        out("| loader | images/s |")
        out("| --- | ---: |")
        in_memory = batch_rate(_loader(plain, args.batch, True, cpu, True), 5)
        out(f"| training `_loader` (DataLoader, in-process collate), plain tensors | {in_memory:,.0f} |")
        out(f"| the same, `MetaTensor` slices (before this change) | {batch_rate(_loader(meta, args.batch, True, cpu, True), 5):,.0f} |")
        threaded = ThreadDataLoader(Dataset(plain), batch_size=args.batch, shuffle=True, drop_last=True)
        out(f"| MONAI `ThreadDataLoader` (collate in a thread), plain tensors | {batch_rate(threaded, 5):,.0f} |")
        if torch.cuda.is_available():
            gpu = DistributedContext(device=torch.device("cuda"))
            rate = batch_rate(_loader(plain, args.batch, True, gpu, True), 5, gpu.device)
            out(f"| training `_loader` on CUDA: pinned + `non_blocking` copy to the GPU | {rate:,.0f} |")

        slowest, fastest = min(per_cpu), max(per_cpu)
        inference_now, inference_goal = GPU_RATES["inference"]
        training_now, training_goal = GPU_RATES["training"]
        out()
        out(
            f"Against the GPU (one H200, 228x228, bf16, batch 8): inference {inference_now} img/s now, {inference_goal} target, "
            f"needs {inference_now / fastest:.1f}-{inference_now / slowest:.1f} / {inference_goal / fastest:.0f}-{inference_goal / slowest:.0f} "
            f"cores decoding new volumes at {slowest:.0f}-{fastest:.0f} slices per CPU-second (scoring path); training "
            f"{training_now} img/s now, {training_goal} target, fed from memory at {in_memory:,.0f} img/s on one core "
            f"({in_memory / training_goal:.0f}x the target) after the first pass."
        )

        out()
        out(f"Persistent cache (data#cache_dir) over {args.files} files, slices/s (hit rate of the filled cache):")
        out()
        out(f"| input | no cache, {args.workers} workers | empty cache (miss + write), {args.workers} workers | filled cache, 1 process | filled cache, {args.workers} workers |")
        out("| --- | ---: | ---: | ---: | ---: |")
        for name, pattern in inputs:
            load_all, n_all = loader(pattern, args.files)
            cache, stats = root / "cache", {}

            def fresh(c: Path = cache) -> None:
                shutil.rmtree(c, ignore_errors=True)

            plain_many = median_seconds(lambda f=load_all: f(args.workers), args.repeats)
            cold = median_seconds(lambda f=load_all, c=cache: f(args.workers, c), args.repeats, setup=fresh)
            warm = median_seconds(lambda f=load_all, c=cache, st=stats: f(0, c, st), args.repeats)
            warm_many = median_seconds(lambda f=load_all, c=cache: f(args.workers, c), args.repeats)
            hit_rate = stats["cache_hits"] / (stats["cache_hits"] + stats["cache_misses"])
            out(
                f"| {name} | {n_all / plain_many:.0f} | {n_all / cold:.0f} | {n_all / warm:.0f} ({hit_rate:.0%}) | "
                f"{n_all / warm_many:.0f} |"
            )
            fresh()
    out()
    out(f"Load average (1 min) at the end: {os.getloadavg()[0]:.2f} (the benchmark itself adds 1 to {1 + args.workers})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
