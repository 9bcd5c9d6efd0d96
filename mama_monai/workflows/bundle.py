"""MONAI bundle entry points: what ``configs/*.yaml`` call under ``python -m monai.bundle run``.

The bundle's configs (``configs/train.yaml`` + one ``configs/network/<name>.yaml``, and the
``inference`` / ``evaluate`` / ``multi_gpu_train`` files) are the same files the ``mama-monai``
CLI reads. Their ``$`` expressions only call the small functions and classes here, which reuse
the CLI's code paths: :func:`~mama_monai.workflows.splits.prepare_splits` +
:func:`~mama_monai.workflows.training.train_model` (``train#trainer``),
:func:`~mama_monai.workflows.model_evaluation.evaluate_test_split` (``validate#evaluator``) and
:func:`~mama_monai.workflows.scoring.score_cases` (the inference config's ``evaluator``). The other
model-zoo components (``network_def``, ``dataset``, ``preprocessing``, ``inferer``, ``postprocessing``,
``train#dataset``) are in :mod:`mama_monai.workflows.bundle_components`.

``train#trainer`` and ``validate#evaluator`` are not ignite engines: the engines
(:class:`~mama_monai.engines.AnomalyTrainer` / ``AnomalyEvaluator``) are built inside
``train_model`` exactly as for the CLI. The config sections they read are handed to them by
reference (``config: {seed: "@seed", data: "@data", network_def: "@network_def", ...}`` in
``train.yaml``), overrides already applied. A reference hands a component over *built*, so
:func:`sections_parser` turns this package's networks and losses back into their literal
description (:func:`~mama_monai.arguments.described`): ``train_model`` builds the network again
after seeding and stores the same ``network_def`` in the model file as the CLI does.

Example (from the repository root, which is the bundle root)::

    python -m monai.bundle run \\
        --config_file "['configs/train.yaml','configs/network/mamanet_compact.yaml']" \\
        --dataset_dir data_manifests/covid_ct.json --training#iterations 1000
    python -m monai.bundle run --config_file configs/inference.yaml --dataset_dir /data/new_cases
"""

from __future__ import annotations

import copy
import functools
import logging
import os
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigParser

__all__ = [
    "BundleConfigError",
    "BundleEvaluator",
    "BundleInferer",
    "BundleTrainer",
    "bundle_inputs",
    "dataset_manifest",
    "resolve_device",
    "sections_parser",
]

logger = logging.getLogger(__name__)


class BundleConfigError(ValueError):
    """A bundle config value that cannot be used; the message names the key and the value."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """:func:`mama_monai.workflows.devices.resolve_device`, its refusal as a :class:`BundleConfigError`."""
    from mama_monai.workflows.devices import resolve_device as resolve

    try:
        return resolve(device)
    except ValueError as err:
        raise BundleConfigError(str(err)) from None


def dataset_manifest(dataset_dir: str | os.PathLike | None) -> str | None:
    """The manifest that training reads (``data#manifest``) from the bundle's ``dataset_dir``.

    Args:
        dataset_dir: a manifest JSON, a folder holding ``manifest.json``, or ``None`` (the
            embedded LIDC-IDRI-0001 demo).

    Raises:
        BundleConfigError: the path does not exist, or the folder has no ``manifest.json``.
    """
    if dataset_dir is None:
        return None
    path = Path(dataset_dir)
    if path.is_file():
        return str(path)
    if path.is_dir() and (path / "manifest.json").is_file():
        return str(path / "manifest.json")
    what = "is a folder without manifest.json" if path.is_dir() else "does not exist"
    raise BundleConfigError(
        f"dataset_dir {str(dataset_dir)!r} {what}: set --dataset_dir to a manifest JSON or a folder holding "
        "manifest.json (see data_manifests/README.md), or null for the embedded demo."
    )


def bundle_inputs(dataset_dir: str | os.PathLike | None) -> list[str]:
    """Every image file (NIfTI, NRRD, MetaImage, PNG/JPEG/TIFF: ``readers.INPUT_SUFFIXES``) and every
    folder holding DICOM files under ``dataset_dir``, sorted (a ``.mhd``'s ``.raw`` is not an input).

    A folder with DICOM files is one input (its series; several series in one folder are told
    apart by :func:`~mama_monai.workflows.scoring.score_cases`' ``series_uid``).

    Raises:
        BundleConfigError: ``dataset_dir`` is null, missing, or holds no DICOM / NIfTI input.
    """
    from mama_monai.data.dicom_series import is_dicom_file
    from mama_monai.data.readers import INPUT_SUFFIXES

    if dataset_dir is None or not Path(dataset_dir).is_dir():
        raise BundleConfigError(
            f"dataset_dir {None if dataset_dir is None else str(dataset_dir)!r} is not a folder: set --dataset_dir to "
            "a folder of DICOM series folders and/or image files (NIfTI, NRRD, MetaImage, PNG/JPEG/TIFF)."
        )
    found: list[str] = []
    for root, dirs, files in os.walk(dataset_dir):
        dirs.sort()
        paths = [Path(root) / f for f in sorted(files) if not f.startswith(".")]
        found += [str(p) for p in paths if p.name.lower().endswith(INPUT_SUFFIXES)]
        if any(not p.name.lower().endswith(INPUT_SUFFIXES) and is_dicom_file(p) for p in paths):
            found.append(str(root))
    if not found:
        raise BundleConfigError(
            f"dataset_dir {str(dataset_dir)!r} holds no DICOM series and no image file ({', '.join(INPUT_SUFFIXES)})."
        )
    return sorted(found)


def sections_parser(config: Any, where: str) -> ConfigParser:
    """A :class:`~monai.bundle.ConfigParser` of the config sections a bundle runner was handed
    (``train#trainer#config``: ``{"seed": "@seed", "data": "@data", "network_def": "@network_def", ...}``).

    A MONAI reference hands a component over built: a network or loss of this package is turned
    back into its literal description (:func:`~mama_monai.arguments.described`), so that
    ``train_model`` builds it again after seeding and stores the same ``network_def`` as the CLI.

    Raises:
        BundleConfigError: ``config`` is not a dict, or holds a built object that is not one of
            this package's networks or losses (names the key).
    """
    from mama_monai.arguments import described

    if not isinstance(config, dict):
        raise BundleConfigError(f"{where} must be a dict of config sections (seed, data, ...), got {type(config).__name__}.")
    plain: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, (dict, list, str, int, float, bool, type(None))):
            plain[key] = copy.deepcopy(value)
            continue
        try:
            plain[key] = described(value)
        except TypeError as err:
            raise BundleConfigError(f"{where}#{key}: {err}") from None
    return ConfigParser(plain)


def _given(parser: ConfigParser | None, config: dict[str, Any] | None, where: str) -> ConfigParser:
    """``parser`` if given, else :func:`sections_parser` of ``config``."""
    if parser is not None:
        return parser
    if config is None:
        raise BundleConfigError(f"{where} is not set: give the runner the config sections it reads (see configs/train.yaml).")
    return sections_parser(config, where)


@functools.lru_cache(maxsize=4)
def _read_model_file(path: str, mtime_ns: int, size: int, device: str):
    from mama_monai.engines.model_spec import load_model_spec

    return load_model_spec(path, torch.device(device))


def _load_checkpoint(ckpt_path: str | os.PathLike, device: str | torch.device):
    """``(network, spec)`` of the bundle's model file (:func:`~mama_monai.engines.model_spec.load_model_spec`).

    Read, checked and hashed once per version of the file and device: a workflow's ``network_def``,
    ``preprocessing``, ``postprocessing`` and runner share one read (keyed by the resolved path,
    the file's modification time and size), and a rewritten model file is read again. Each call
    gets its own copy of the network.

    Raises:
        BundleConfigError: the file is not a usable model file, naming ``ckpt_path``.
    """
    from mama_monai.engines.checkpoint import CheckpointError

    path = os.path.realpath(ckpt_path)
    try:
        stat = os.stat(path)
        key = (path, stat.st_mtime_ns, stat.st_size, str(device))
    except OSError:
        key = None  # not cached: load_model_spec names the missing file
    try:
        network, spec = _read_model_file(*key) if key else _read_model_file.__wrapped__(str(ckpt_path), 0, 0, str(device))
    except CheckpointError as err:
        raise BundleConfigError(f"ckpt_path {str(ckpt_path)!r} cannot be used: {err}") from None
    return copy.deepcopy(network), spec  # each caller its own network: one may move or train it


class BundleTrainer:
    """``train#trainer``: the CLI's ``train`` (splits from ``data``, then ``train_model``).

    Args:
        output_dir: where ``model.pt``, ``checkpoints/`` and ``tensorboard/`` go.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``; under ``torchrun`` each process joins the
            process group (:func:`~mama_monai.workflows.distributed.init_distributed`).
        resume: continue from the last checkpoint in ``output_dir/checkpoints`` (default False).
        progress: progress bar on rank 0 (default False).
        dataset: ``train#dataset`` (:class:`~mama_monai.workflows.bundle_components.TrainingSlices`),
            whose splits are trained on; ``None`` (default) splits ``data`` here, as the CLI does.
        max_epochs: ``None`` (default): ``training#iterations`` optimiser steps. An int (what MONAI FL
            and other workflow clients set): that many passes over the training slices, i.e.
            ``max_epochs * ceil(slices / training#batch_size)`` steps, rounded up to a multiple of
            ``training#val_interval``.
        config: the sections ``train_model`` reads, handed over by reference in ``train.yaml``:
            ``seed``, ``data``, ``network_def``, ``loss``, ``optimizer``, ``training``, ``runtime``,
            ``scoring`` (:func:`sections_parser`). ``None``: :meth:`run` needs a parser.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        device: str = "auto",
        resume: bool = False,
        progress: bool = False,
        dataset: Any = None,
        max_epochs: int | None = None,
        config: dict[str, Any] | None = None,
    ):
        self.output_dir, self.device, self.resume, self.progress = Path(output_dir), str(device), bool(resume), bool(progress)
        if max_epochs is not None and (isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1):
            raise BundleConfigError(f"train#trainer#max_epochs must be null or a positive int, got {max_epochs!r}.")
        self.dataset, self.max_epochs, self.config = dataset, max_epochs, config

    def run(self, parser: ConfigParser | None = None):
        """Train; returns the :class:`~mama_monai.workflows.training.TrainResult`.

        Args:
            parser: the workflow config; default the ``config`` sections given at construction.
        """
        from mama_monai.workflows.splits import prepare_splits
        from mama_monai.workflows.distributed import init_distributed
        from mama_monai.workflows.training import train_model

        parser = _given(parser, self.config, "train#trainer#config")
        ctx = init_distributed(self.device)
        splits = prepare_splits(parser) if self.dataset is None else self.dataset.splits(parser)
        if self.max_epochs is not None:
            steps = self.max_epochs * -(-len(splits["train"]) // int(parser["training#batch_size"]))
            interval = int(parser["training#val_interval"])
            parser["training#iterations"] = -(-steps // interval) * interval
        result = train_model(parser, splits["train"], splits["val"], self.output_dir, ctx, resume=self.resume, progress=self.progress and ctx.is_main)
        if ctx.is_main:
            logger.info("trained %d iterations in %.0f s; model: %s", result.iterations, result.seconds, result.model_path)
        return result


class BundleEvaluator:
    """``validate#evaluator``: the CLI's ``evaluate`` (the ``data`` test split scored with ``ckpt_path``).

    The data are preprocessed with the model file's own preset and size. Writes
    ``output_dir/report.json`` and ``output_dir/plots/``. ``config``: the ``seed`` and ``data``
    sections, handed over by reference in ``train.yaml`` (``None``: :meth:`run` needs a parser).
    """

    def __init__(
        self, ckpt_path: str | os.PathLike, output_dir: str | os.PathLike, device: str = "auto", config: dict[str, Any] | None = None
    ):
        self.ckpt_path, self.output_dir, self.device = Path(ckpt_path), Path(output_dir), str(device)
        self.config = config

    def run(self, parser: ConfigParser | None = None) -> dict[str, Any]:
        """Evaluate; returns the report (also written to ``report.json``), as ``mama-monai evaluate``
        (:func:`~mama_monai.workflows.model_evaluation.evaluate_test_split`): only the test split is
        read, and test cases that cannot be loaded are listed in the report."""
        from mama_monai.workflows.model_evaluation import evaluate_test_split, model_data_overrides

        parser = _given(parser, self.config, "validate#evaluator#config")
        device = resolve_device(self.device)
        network, spec = _load_checkpoint(self.ckpt_path, device)
        for key, value in model_data_overrides(spec).items():  # checked literals only
            parser[key] = value
        report = evaluate_test_split(network, spec, parser, self.output_dir, device)
        logger.info(
            "%d of %d test cases scored (%d failed): image AUROC %.3f; report: %s",
            report["n_scored"], report["n_cases"], report["n_failed"], report["image"]["auroc"], self.output_dir / "report.json",
        )  # fmt: skip
        return report


class BundleInferer:
    """The inference config's ``evaluator``: score every DICOM series / image file under ``dataset_dir`` with ``ckpt_path``.

    Runs :func:`~mama_monai.workflows.scoring.score_cases`: ``output_dir/<case>/anomaly_map.nii.gz``
    on each input's own grid, ``overlay.png``, ``scores.csv`` and ``scores.json``.

    Args:
        ckpt_path: a model file written by training.
        dataset_dir: folder of inputs (:func:`bundle_inputs`).
        output_dir: new or empty folder (or any folder with ``overwrite``).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        overwrite: write into a non-empty ``output_dir`` (default False).
        force: score DICOM inputs of another modality than the model's (default False).
        dataset: the inference config's ``dataset``, whose items' ``image`` paths are scored;
            ``None`` (default): :func:`bundle_inputs` of ``dataset_dir``.
    """

    def __init__(
        self,
        ckpt_path: str | os.PathLike,
        dataset_dir: str | os.PathLike | None,
        output_dir: str | os.PathLike,
        device: str = "auto",
        overwrite: bool = False,
        force: bool = False,
        dataset: Any = None,
    ):
        self.ckpt_path, self.dataset_dir, self.output_dir = Path(ckpt_path), dataset_dir, Path(output_dir)
        self.device, self.overwrite, self.force = str(device), bool(overwrite), bool(force)
        self.dataset = dataset

    def run(self) -> dict[str, Any]:
        """Score; returns the report of :func:`~mama_monai.workflows.scoring.score_cases`."""
        from mama_monai.workflows.scoring import score_cases

        if self.dataset is None or self.dataset_dir is None:
            inputs = bundle_inputs(self.dataset_dir)  # a null dataset_dir is refused here, naming the key
        else:
            inputs = [str(item["image"]) for item in self.dataset.data]
        device = resolve_device(self.device)
        _load_checkpoint(self.ckpt_path, "cpu")  # a bad ckpt_path fails here, naming the key
        report = score_cases(self.ckpt_path, inputs, self.output_dir, device=device, overwrite=self.overwrite, force=self.force)
        logger.info("scored %d case(s), %d failed; report: %s", len(report["cases"]), len(report["failures"]), report["reports"]["json"])
        return report
