"""Train a network on normal slices with MONAI's engines, validate, calibrate, save the model file.

The schedule is counted in iterations (the paper: 70k of batch 8). Ignite epochs are blocks of
``val_interval`` iterations: after each block the model is validated (reconstruction error on
the held-out normal slices; image AUROC where validation holds lesions), the ``last`` training
checkpoint (network, optimizer, trainer state) is written, and the best network by
``training#checkpoint`` is kept: by default the one of lowest held-out normal error
(:data:`CHECKPOINT_CHOICES`). ``resume=True`` continues from the last checkpoint, so a run
killed midway ends with the same number of iterations done. Under ``torchrun`` the network is
wrapped in ``DistributedDataParallel`` and each process reads its share through a
``DistributedSampler``; only rank 0 writes files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigParser
from monai.data import DataLoader, Dataset
from monai.handlers import ROCAUC, LrScheduleHandler, ValidationHandler, from_engine
from monai.utils import set_determinism
from torch import nn
from torch.utils.data import DistributedSampler

from mama_monai.arguments import described
from mama_monai.data.body_crop import CROP_RULE
from mama_monai.engines import (
    Acceleration,
    AnomalyEvaluator,
    AnomalyMap,
    AnomalyTrainer,
    DetailedForward,
    SlotUsageHandler,
    anomaly_map_args,
    read_checkpoint,
    save_model,
    score_items,
)
from mama_monai.engines.augmentation import RandomAffineBatch
from mama_monai.engines.input_noise import CoarseNoise
from mama_monai.engines.interrupt import interrupt_between_iterations
from mama_monai.engines.normal_error import NormalReconstructionError
from mama_monai.engines.post_processing import calibrate_thresholds
from mama_monai.evaluation.case_score import DEFAULT_FACTOR
from mama_monai.engines.random_state import RandomState, ResumableShuffle
from mama_monai.engines.training_handlers import LAST_CHECKPOINT_PREFIX, attach_checkpointing, attach_logging, attach_resume
from mama_monai.engines.training_progress import TrainingProgress, ValidationRecorder, improves
from mama_monai.networks import ReconstructionEnsemble
from mama_monai.networks.nets.ensemble import MAX_MEMBERS
from mama_monai.workflows.config import resolved
from mama_monai.workflows.distributed import DistributedContext, register_comm_hook

__all__ = ["LAST_CHECKPOINT_PREFIX", "TrainResult", "TrainingRun", "build_training_run", "kept_validation", "normal_mse", "train_ensemble", "train_model", "train_with_restarts"]

logger = logging.getLogger(__name__)

_ITEM_KEYS = ("image", "label")


@dataclass
class TrainResult:
    """What a training run leaves: the best network (eval mode), its model file, the calibrated
    threshold, the validation history and the iterations done."""

    network: nn.Module
    model_path: Path | None
    threshold: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    iterations: int = 0
    seconds: float = 0.0
    #: mean squared error of the reconstruction on the held-out normal validation slices
    val_normal_mse: float | None = None


@dataclass
class TrainingRun:
    """The pieces of one training run, as :func:`build_training_run` makes them: the network
    (unwrapped, for saving), its compiled evaluation twin, the optimizer, the two engines and the
    progress state they share."""

    network: nn.Module
    eval_network: nn.Module
    optimizer: torch.optim.Optimizer
    anomaly_map: AnomalyMap
    trainer: AnomalyTrainer
    evaluator: AnomalyEvaluator
    progress: TrainingProgress
    amp: bool
    memory_format: torch.memory_format | None
    has_anomalies: bool
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler | None = None

    def checkpoint_objects(self) -> dict[str, Any]:
        """What every ``last_*.pt`` checkpoint holds, and what ``--resume`` restores (``rng``: the
        random generators, so that the resumed run draws what the interrupted one would have)."""
        return {
            "network": self.network, "optimizer": self.optimizer, "trainer": self.trainer, "progress": self.progress,
            "rng": RandomState(), **({"sampler": sampler} if isinstance(sampler := self.trainer.data_loader.sampler, ResumableShuffle) else {}),
            **({"lr_scheduler": self.lr_scheduler} if self.lr_scheduler is not None else {}),
        }  # fmt: skip


def _loader(items: Sequence[dict], batch_size: int, shuffle: bool, ctx: DistributedContext, drop_last: bool) -> DataLoader:
    """Batches of the in-memory slices, collated in this process: no worker processes and no
    ``ThreadDataLoader``: collating preprocessed slices runs at over 10,000 images/s on one CPU
    core (batch 8 at 228 x 228; ``benchmarks/loader.py``), 40x the 250 images/s training target,
    and a ``ThreadDataLoader`` measured slower. On CUDA, batches are collated into pinned memory:
    faster host-to-device copies, asynchronous where the engine has ``non_blocking``. A shuffled
    loader in one process draws its order from a :class:`ResumableShuffle` seeded from the global
    generator, and the loader's own seed from a generator of its own, so a checkpoint holds where
    the pass stands and ``--resume`` continues it exactly."""
    data = Dataset([{k: item[k] for k in _ITEM_KEYS} for item in items])
    if shuffle and ctx.enabled:
        sampler = DistributedSampler(data, ctx.world_size, ctx.rank, shuffle=True)
    elif shuffle:
        sampler = ResumableShuffle(len(data), seed=int(torch.randint(0, 2**31 - 1, ())))
    else:
        sampler = None
    return DataLoader(
        data,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=0,
        pin_memory=ctx.device.type == "cuda",
        generator=torch.Generator().manual_seed(0),
    )


def _schedule(cfg: dict[str, Any]) -> tuple[int, int]:
    """``training#iterations`` and ``training#val_interval``, checked."""
    iterations, interval = int(cfg["iterations"]), int(cfg["val_interval"])
    if iterations < 1 or interval < 1 or iterations % interval:
        raise ValueError(
            f"training#iterations ({iterations}) must be a positive multiple of training#val_interval ({interval})."
        )
    return iterations, interval


#: ``training#lr_schedule``: ``"constant"`` keeps ``optimizer#lr`` (the default); ``"cosine"``
#: anneals it to 0 over ``training#iterations`` (PyTorch's ``CosineAnnealingLR``, stepped every iteration)
LR_SCHEDULES = ("constant", "cosine")


def lr_scheduler(optimizer: torch.optim.Optimizer, cfg: dict[str, Any], iterations: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The learning-rate schedule ``training#lr_schedule`` asks for (``None`` for ``"constant"``).

    ``"cosine"`` is PyTorch's ``CosineAnnealingLR`` from ``optimizer#lr`` to 0 at the last of
    ``iterations`` steps: the usual way to end a short run on a settled network rather than on
    wherever the last steps at full rate left it (``docs/accuracy.md`` measures it)."""
    choice = cfg.get("lr_schedule", "constant")
    if choice not in LR_SCHEDULES:
        raise ValueError(f"training#lr_schedule must be one of {list(LR_SCHEDULES)}, got {choice!r}.")
    if choice == "constant":
        return None
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=iterations, eta_min=0.0)


def _wrapped_network(parser: ConfigParser, cfg: dict[str, Any], accel: Acceleration, ctx: DistributedContext):
    """``network_def`` on the device, prepared by ``accel``; the training module around it
    (:class:`DetailedForward`; SyncBatchNorm + DDP under ``torchrun``; compiled); the compiled
    evaluation network. Returns ``(network, model, eval_network)``."""
    network = accel.prepare_network(parser.get_parsed_content("network_def", lazy=False).to(ctx.device))
    model: nn.Module = DetailedForward(network)
    if ctx.enabled:
        if ctx.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            network = model.network
        model = nn.parallel.DistributedDataParallel(model, device_ids=[ctx.device] if ctx.device.type == "cuda" else None)
    register_comm_hook(model, cfg.get("ddp_comm_hook"))  # training#ddp_comm_hook; also checks the name in one process
    model = accel.compiled(model)  # compile(DDP(model)), the order PyTorch's DDP + compile guide uses
    return network, model, accel.compiled(network)


def _amp(cfg: dict[str, Any], ctx: DistributedContext) -> bool:
    """bf16 autocast: ``training#amp`` (default on), and only on CUDA."""
    return bool(cfg.get("amp", True)) and ctx.device.type == "cuda"


def build_training_run(
    parser: ConfigParser, train_items: Sequence[dict], val_items: Sequence[dict], ctx: DistributedContext
) -> TrainingRun:
    """Network, optimizer, anomaly map and MONAI's two engines from the workflow config, in the
    order that fixes the random state after ``set_determinism``: network, optimizer, loaders."""
    cfg = parser.get_parsed_content("training")
    accel = Acceleration.from_config(parser.get_parsed_content("runtime") if "runtime" in parser else None, ctx.device)
    network, model, eval_network = _wrapped_network(parser, cfg, accel, ctx)
    memory_format = accel.memory_format(int(getattr(network, "spatial_dims", 2)))
    opt_cfg = parser.get_parsed_content("optimizer")
    optimizer = accel.adam(network.parameters(), lr=float(opt_cfg["lr"]), weight_decay=float(opt_cfg.get("weight_decay", 0.0)))
    anomaly_map = AnomalyMap(2, **anomaly_map_args(parser.get_parsed_content("scoring")))
    iterations, interval = _schedule(cfg)
    scheduler = lr_scheduler(optimizer, cfg, iterations)
    amp = _amp(cfg, ctx)
    has_anomalies = any(int(it["label"]) == 1 for it in val_items)
    on_cuda = ctx.device.type == "cuda"  # batches are pinned on CUDA: copy asynchronously
    evaluator = AnomalyEvaluator(
        anomaly_map=anomaly_map,
        device=ctx.device,
        val_data_loader=_loader(val_items, int(cfg["batch_size"]), False, ctx, drop_last=False),
        network=eval_network,
        amp=amp,
        memory_format=memory_format,
        non_blocking=on_cuda,
        key_val_metric={"val_auroc": ROCAUC(output_transform=from_engine(["score", "label"]))} if has_anomalies else None,
        additional_metrics={"val_normal_mse": NormalReconstructionError()},
    )
    trainer = AnomalyTrainer(
        device=ctx.device,
        max_epochs=iterations // interval,
        epoch_length=interval,
        train_data_loader=_loader(train_items, int(cfg["batch_size"]), True, ctx, drop_last=True),
        network=model,
        optimizer=optimizer,
        loss_function=parser.get_parsed_content("loss", lazy=False),
        amp=amp,
        decollate=False,
        memory_format=memory_format,
        non_blocking=on_cuda,
        input_noise=CoarseNoise.from_config(cfg.get("input_noise")),
        augment=RandomAffineBatch.from_config(cfg.get("augment")),
    )
    progress = TrainingProgress(int(cfg.get("early_stopping_patience") or 0), CHECKPOINT_CRITERION[checkpoint_choice(cfg)])
    return TrainingRun(
        network, eval_network, optimizer, anomaly_map, trainer, evaluator, progress, amp, memory_format, has_anomalies, scheduler
    )


def _attach_handlers(run: TrainingRun, output_dir: Path, ctx: DistributedContext, progress: bool) -> None:
    """Slot usage, validation every block, the history/best-network/early-stopping recorder and,
    on the main process, checkpoints and logs."""
    ckpt_dir = output_dir / "checkpoints"
    SlotUsageHandler().attach(run.trainer)
    if run.lr_scheduler is not None:  # steps after every iteration, before the epoch's validation and checkpoint
        LrScheduleHandler(run.lr_scheduler, print_lr=False, epoch_level=False).attach(run.trainer)
    ValidationHandler(validator=run.evaluator, interval=1, epoch_level=True).attach(run.trainer)
    recorder = ValidationRecorder(run.trainer, run.network, run.progress, ckpt_dir / "best_network.pt", run.has_anomalies, ctx.is_main)
    recorder.attach(run.evaluator)
    if ctx.is_main:
        attach_checkpointing(run.trainer, run.checkpoint_objects(), ckpt_dir)
        attach_logging(run.trainer, run.evaluator, output_dir / "tensorboard", progress)


def _resume(run: TrainingRun, ckpt_dir: Path) -> None:
    """Continue from the newest readable ``last_*.pt`` (a truncated newest one is set aside)."""
    from mama_monai.workflows.resume import set_aside_unreadable

    set_aside_unreadable(ckpt_dir, LAST_CHECKPOINT_PREFIX)
    attach_resume(run.trainer, run.checkpoint_objects(), ckpt_dir)


#: ``training#checkpoint``, the network a run keeps (validated every ``val_interval`` iterations):
#: ``"normal_error"`` (default) the one of lowest mean squared reconstruction error on the held-out
#: NORMAL validation slices: normal data only, the rule that tracked the test across seeds
#: (docs/accuracy.md) and needs no simulated lesion; ``"val_auroc"`` the one of best validation
#: AUROC (on real or SIMULATED lesions; the last network where validation has none; the
#: default until 2026-12-02); ``"last"`` the last iteration's
CHECKPOINT_CHOICES = ("normal_error", "val_auroc", "last")
#: ``training#checkpoint`` -> the history-row criterion that picks the best network and counts
#: early stopping (``"last"`` keeps the earlier rule for early stopping)
CHECKPOINT_CRITERION = {"normal_error": "val_normal_mse", "val_auroc": "val_auroc", "last": "val_auroc"}


def checkpoint_choice(cfg: dict[str, Any]) -> str:
    """``training#checkpoint`` of a config's ``training`` section, checked (default ``"normal_error"``)."""
    choice = cfg.get("checkpoint", "normal_error")
    if choice not in CHECKPOINT_CHOICES:
        raise ValueError(f"training#checkpoint must be one of {list(CHECKPOINT_CHOICES)}, got {choice!r}.")
    return choice


def kept_validation(history: list[dict[str, Any]], choice: str) -> dict[str, Any] | None:
    """The validation row of the network that a run with ``training#checkpoint: choice`` kept:
    the first row of best criterion (``TrainingProgress.update`` keeps a network only on a strict
    improvement), the last row for ``"last"`` or where no row carries the criterion (as
    :func:`_best_network` keeps the last network then); None without a validation.

    Example::

        >>> rows = [{"iteration": 10, "val_normal_mse": 0.2}, {"iteration": 20, "val_normal_mse": 0.1},
        ...         {"iteration": 30, "val_normal_mse": 0.1}]
        >>> kept_validation(rows, "normal_error")["iteration"]
        20
    """
    if not history:
        return None
    key = CHECKPOINT_CRITERION[checkpoint_choice({"checkpoint": choice})]
    kept = None
    for row in history if choice != "last" else ():
        if row.get(key) is not None and improves(key, row[key], None if kept is None else kept[key]):
            kept = row  # as TrainingProgress.update keeps a network: on a strict improvement
    return history[-1] if kept is None else kept


def _best_network(run: TrainingRun, ckpt_dir: Path, ctx: DistributedContext, choice: str) -> None:
    """Load the best network by ``choice``'s criterion (lowest held-out normal error, or best
    validation AUROC) into ``run.network``, in eval mode; nothing for ``"last"``, nor where no
    validation row carried the criterion (``val_auroc`` without lesions in validation), so a
    ``best_network.pt`` left by an earlier run in the folder is never taken."""
    if ctx.enabled:  # rank 0 has finished writing best_network.pt before any rank reads it
        torch.distributed.barrier()
    best = ckpt_dir / "best_network.pt"
    if choice != "last" and run.progress.best is not None and best.is_file():
        run.network.load_state_dict(torch.load(best, map_location=ctx.device, weights_only=True))
    run.network.eval()


#: the ``data`` keys a model file keeps as ``preprocessing``: what scoring needs, and the training
#: split (``evaluate``'s default test split); machine-local ones (``cache_dir``, ``num_workers``) stay out
_STORED_DATA_KEYS = ("preset", "spatial_size", "modality", "manifest", "fold")
#: the ``data`` keys that say how the threshold was calibrated, kept as a record under ``validation``
_VALIDATION_KEYS = (
    "val_every", "validation_split", "validation_block", "validation_gap",
    "simulated_validation_anomalies", "validation_lesion_mode", "validation_lesion_radius", "validation_lesion_copies",
    "validation_lesion_centres", "validation_lesion_enclosed", "validation_lesion_target", "validation_lesion_sign",
)  # fmt: skip


def _save(parser: ConfigParser, run: TrainingRun, output_dir: Path, threshold: dict[str, Any]) -> Path:
    """``output_dir/model.pt``: the network, the config that rebuilds and preprocesses for it, the
    threshold and the training history. Of the ``data`` section only what inference needs (and the
    training split) goes in as ``preprocessing``; the validation settings go in as a record."""
    metrics = {"history": run.progress.history, "iterations": int(run.trainer.state.iteration)}
    return save_model(output_dir / "model.pt", run.network, _stored_config(parser), threshold, metrics)


def _stored_config(parser: ConfigParser) -> dict[str, Any]:
    """The config a model file holds (see :func:`_save`)."""
    data = parser.get_parsed_content("data")
    return {
        "network_def": resolved(parser, "network_def"),
        # crop_to_body always written (default true): a file without it predates the crop and is scored without it;
        # crop_rule: which presets crop (body_crop.CROP_RULES; a file without it trained the MR presets uncropped)
        "preprocessing": {k: data[k] for k in _STORED_DATA_KEYS if k in data}
        | {"crop_to_body": data.get("crop_to_body", True), "crop_rule": CROP_RULE},
        "validation": {k: data[k] for k in _VALIDATION_KEYS if k in data},
        "scoring": anomaly_map_args(parser.get_parsed_content("scoring")),
        "loss": resolved(parser, "loss"),
        "training": dict(parser.get_parsed_content("training")),
    }


def train_model(
    parser: ConfigParser,
    train_items: Sequence[dict],
    val_items: Sequence[dict],
    output_dir: str | Path,
    ctx: DistributedContext,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train ``network_def`` from ``parser`` on ``train_items`` (normals), validate on ``val_items``.

    The recipe: seed; build the network and engines (:func:`build_training_run`); attach the
    handlers; resume if asked; run; reload the best network (``training#checkpoint``: lowest
    held-out ``"normal_error"``, best ``"val_auroc"``, or keep the ``"last"``); calibrate the thresholds on the
    validation normals (:func:`~mama_monai.engines.post_processing.calibrate_thresholds`); save.

    Args:
        parser: the workflow config (see ``configs/train.yaml``): ``seed``, ``network_def``,
            ``loss``, ``optimizer``, ``training``, ``scoring``, ``data``.
        train_items: normal slices (dicts with ``image`` ``(C, H, W)`` and ``label`` 0).
        val_items: held-out slices; normals calibrate the threshold and (by default) select the
            best network; anomalies (real or SIMULATED) give the validation AUROC.
        output_dir: where ``checkpoints/``, ``tensorboard/`` and ``model.pt`` go.
        ctx: the :class:`~mama_monai.workflows.distributed.DistributedContext`.
        resume: continue from the last checkpoint in ``output_dir/checkpoints``.
        progress: show a progress bar (rank 0).

    With ``training#restarts`` = K > 1 the recipe runs K times, from seeds ``seed``, ``seed + 1``,
    ... (``output_dir/restarts/seed_S/``), and the network with the lowest reconstruction error
    on the held-out *normal* validation slices is kept (:func:`train_with_restarts`).

    Returns:
        A :class:`TrainResult`; ``model_path`` is ``output_dir/model.pt`` (None on ranks > 0).
    """
    cfg = parser.get_parsed_content("training")
    restarts, members = restart_count(cfg), ensemble_size(cfg)
    if restarts > 1 and members > 1:
        raise ValueError(
            f"training#restarts = {restarts} and training#ensemble = {members}: choose one (restarts keeps the best "
            "of K networks, ensemble keeps all K and averages them)."
        )
    slice_coverage(parser.get_parsed_content("scoring"))  # a bad value fails before training
    if restarts > 1:
        return train_with_restarts(parser, train_items, val_items, output_dir, ctx, restarts, resume, progress)
    if members > 1:
        return train_ensemble(parser, train_items, val_items, output_dir, ctx, members, resume, progress)
    return _train_once(parser, train_items, val_items, output_dir, ctx, resume, progress)


def _count(cfg: dict[str, Any], key: str, meaning: str) -> int:
    value = cfg.get(key, 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"training#{key} must be an integer >= 1 ({meaning}), got {value!r}.")
    return value


def restart_count(cfg: dict[str, Any]) -> int:
    """``training#restarts`` of a config's ``training`` section, checked (default 1): how many
    networks to train from consecutive seeds (ours; :func:`train_with_restarts`)."""
    return _count(cfg, "restarts", "networks trained, the best kept")


def ensemble_size(cfg: dict[str, Any]) -> int:
    """``training#ensemble`` of a config's ``training`` section, checked (default 1): how many
    networks to train from consecutive seeds and average (ours; :func:`train_ensemble`)."""
    value = _count(cfg, "ensemble", "networks trained and averaged")
    if value > MAX_MEMBERS:
        raise ValueError(f"training#ensemble must be at most {MAX_MEMBERS} (networks trained and averaged), got {value!r}.")
    return value


#: the folder of each kind of several-network training -> its config key
_SEVERAL = {"restarts": "training#restarts", "members": "training#ensemble"}


def _seed_runs(
    parser: ConfigParser,
    train_items: Sequence[dict],
    val_items: Sequence[dict],
    output_dir: Path,
    ctx: DistributedContext,
    count: int,
    what: str,
    progress: bool,
):
    """Yield ``(seed, TrainResult)`` of the recipe run ``count`` times from seeds ``seed``,
    ``seed + 1``, ..., each in ``output_dir/<what>/seed_S/``; ``parser``'s seed restored after."""
    seed = int(parser["seed"])
    try:
        for k in range(count):
            parser["seed"] = seed + k
            result = _train_once(parser, train_items, val_items, output_dir / what / f"seed_{seed + k}", ctx, False, progress)
            if result.val_normal_mse is None:
                raise ValueError(f"{_SEVERAL[what]} needs held-out normal validation slices; the validation set has none.")
            logger.info("%s: run %d of %d (seed %d): held-out normal error %.5f", _SEVERAL[what], k + 1, count, seed + k, result.val_normal_mse)
            yield seed + k, result
    finally:
        parser["seed"] = seed


def train_with_restarts(
    parser: ConfigParser,
    train_items: Sequence[dict],
    val_items: Sequence[dict],
    output_dir: str | Path,
    ctx: DistributedContext,
    restarts: int,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train ``restarts`` networks from seeds ``seed``, ``seed + 1``, ... and keep the one whose
    reconstructions of the held-out **normal** validation slices have the lowest mean squared error.

    Why this criterion (our decision, ``docs/accuracy.md``): a 300-iteration CPU run ends in a good
    or a poor state by the luck of its seed (MAMA Net on the demo's LIDC split: 0.58-0.89 image
    AUROC over 10 seeds), and across independent seeds the held-out normal error ranked the runs as
    the test did (predicted on seeds 0-4, held on seeds 5-9), validation AUROC on SIMULATED
    lesions less often. The criterion needs normal slices only. Measured as a whole, three
    restarts (sharing one validation set) gained little: MAMA Net LIDC 0.716 -> 0.744, brain
    0.764 -> 0.759 (start seeds 0-4, none significant; the baselines +0.03 to +0.11), so the
    default is 1.

    Each run is the whole recipe of :func:`train_model` in ``output_dir/restarts/seed_S/`` (its
    checkpoints, logs, model file and threshold); ``output_dir/model.pt`` is the kept run's model
    file with ``metrics["restarts"]`` (seed, held-out normal error, model file of every run) and
    ``metrics["kept_seed"]``. Only the best network so far stays in memory. ``resume`` is refused:
    resume the run in its own ``restarts/seed_S`` folder with ``training#restarts: 1`` instead.
    """
    if resume:
        raise ValueError(
            f"--resume with training#restarts = {restarts} is not supported; resume one run in its "
            "restarts/seed_S folder with training#restarts 1 and seed S instead."
        )
    output_dir = Path(output_dir)
    record: list[dict[str, Any]] = []
    best: TrainResult | None = None
    best_seed, seconds = int(parser["seed"]), 0.0
    for seed, result in _seed_runs(parser, train_items, val_items, output_dir, ctx, restarts, "restarts", progress):
        seconds += result.seconds
        record.append({"seed": seed, "val_normal_mse": result.val_normal_mse, "model": f"restarts/seed_{seed}/model.pt"})
        if best is None or result.val_normal_mse < best.val_normal_mse:
            best, best_seed = result, seed
        del result
    assert best is not None
    logger.info("kept the network of seed %d (lowest held-out normal error of %d runs)", best_seed, restarts)
    model_path = _save_kept_run(best, output_dir / "model.pt", {"restarts": record, "kept_seed": best_seed}, ctx)
    return TrainResult(best.network, model_path, best.threshold, best.history, best.iterations, seconds, best.val_normal_mse)


def train_ensemble(
    parser: ConfigParser,
    train_items: Sequence[dict],
    val_items: Sequence[dict],
    output_dir: str | Path,
    ctx: DistributedContext,
    members: int,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train ``members`` networks from seeds ``seed``, ``seed + 1``, ... and keep them all as one
    :class:`~mama_monai.networks.ReconstructionEnsemble`, which scores with the mean of their
    reconstructions; its thresholds are calibrated on the validation normals anew.

    Why (our decision, ``docs/accuracy.md``): one network's detection depends on the luck of its
    seed far more than on any setting we measured (MAMA Net on the demo's LIDC split: image AUROC
    0.51-0.88 over five seeds on one machine), and the criterion of :func:`train_with_restarts`
    (held-out normal error) picks the better seed only as a tendency. Averaging removes most of
    that variance instead of betting on one seed: measured offline on the product's path (start
    seeds 0-4, three members), MAMA Net LIDC 0.748 +- 0.15 -> 0.816 +- 0.04 and brain 0.754 ->
    0.779, with K times the training cost. The held-out normal error of the ensemble is lower than
    its members' on average, which is what validation without lesions can see.

    Each member is the whole recipe of :func:`train_model` in ``output_dir/members/seed_S/`` (its
    own checkpoint selection, model file and threshold); ``output_dir/model.pt`` holds the
    ensemble with ``metrics["ensemble"]`` (seed, held-out normal error, model file of every member),
    ``metrics["history"]`` of the first member and the ensemble's held-out normal error in
    ``metrics["val_normal_mse"]``. ``resume`` is refused: resume one member in its
    ``members/seed_S`` folder with ``training#ensemble: 1`` and seed S.
    """
    if resume:
        raise ValueError(
            f"--resume with training#ensemble = {members} is not supported; resume one member in its "
            "members/seed_S folder with training#ensemble 1 and seed S instead."
        )
    output_dir = Path(output_dir)
    record: list[dict[str, Any]] = []
    runs: list[TrainResult] = []
    for seed, result in _seed_runs(parser, train_items, val_items, output_dir, ctx, members, "members", progress):
        runs.append(result)
        record.append({"seed": seed, "val_normal_mse": result.val_normal_mse, "model": f"members/seed_{seed}/model.pt"})
    member_def = resolved(parser, "network_def")
    target = member_def.pop("_target_")
    ensemble = ReconstructionEnsemble.of([r.network for r in runs], target, member_def).eval()
    cfg, scoring = parser.get_parsed_content("training"), parser.get_parsed_content("scoring")
    val, threshold = _calibrated(ensemble, AnomalyMap(2, **anomaly_map_args(scoring)), val_items, ctx, int(cfg["batch_size"]), scoring)
    error = normal_mse(val)
    logger.info("ensemble of %d networks: held-out normal error %.5f (members %s)", members, error,
                ", ".join(f"{r['val_normal_mse']:.5f}" for r in record))  # fmt: skip
    model_path = None
    if ctx.is_main:
        config = dict(_stored_config(parser), network_def=described(ensemble))
        metrics = {"history": runs[0].history, "iterations": runs[0].iterations, "ensemble": record, "val_normal_mse": error}
        model_path = save_model(output_dir / "model.pt", ensemble, config, threshold, metrics)
    if ctx.enabled:
        torch.distributed.barrier()
    seconds = sum(r.seconds for r in runs)
    return TrainResult(ensemble, model_path, threshold, runs[0].history, sum(r.iterations for r in runs), seconds, error)


def _save_kept_run(kept: TrainResult, path: Path, extra_metrics: dict[str, Any], ctx: DistributedContext) -> Path | None:
    """``path``: the kept run's model file (config, threshold, history) with ``extra_metrics``
    added; written on rank 0, the others wait for it."""
    model_path = None
    if ctx.is_main:
        saved = read_checkpoint(kept.model_path)
        model_path = save_model(path, kept.network, saved["config"], saved["threshold"], dict(saved["metrics"], **extra_metrics))
    if ctx.enabled:
        torch.distributed.barrier()
    return model_path


def slice_coverage(scoring: dict[str, Any]) -> float:
    """``scoring#slice_coverage``, checked (default 0.5): the factor of the case-score rule
    (:class:`~mama_monai.evaluation.case_score.SliceCoverage`)."""
    value = scoring.get("slice_coverage", DEFAULT_FACTOR)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(
            f"scoring#slice_coverage must be a number in [0, 1] (a slice counts toward a volume's score when its body "
            f"fraction is >= this x the smallest of the validation normals'; 0 = every slice), got {value!r}."
        )
    return float(value)


def _calibrated(
    network: nn.Module, anomaly_map: AnomalyMap, val_items: Sequence[dict], ctx: DistributedContext, batch_size: int,
    scoring: dict[str, Any], memory_format: torch.memory_format | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The validation slices scored by ``network``, and the threshold entry of a model file from
    them and the ``scoring`` section.

    Scored in full precision (no bf16 autocast, whatever ``training#amp`` did on CUDA):
    ``mama-monai score`` and ``evaluate`` compute the scores compared with this threshold that
    way, and bf16 rounds each reconstructed value by up to 0.4 %, not small beside the residuals
    the scores are made of."""
    val = score_items(network, anomaly_map, val_items, ctx.device, batch_size, memory_format=memory_format)
    return val, calibrate_thresholds(val, float(scoring["threshold_quantile"]), slice_coverage(scoring))


def normal_mse(scored: dict[str, Any]) -> float | None:
    """Mean squared reconstruction error over the normal (label 0) cases of ``score_items``'
    output (``image``, ``pred``, ``label``); None where there is none. The held-out normal error
    that ``training#restarts`` ranks runs by."""
    normal = scored["label"] == 0
    return float(((scored["image"] - scored["pred"])[normal] ** 2).mean()) if normal.any() else None


def _train_once(
    parser: ConfigParser,
    train_items: Sequence[dict],
    val_items: Sequence[dict],
    output_dir: str | Path,
    ctx: DistributedContext,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """One run of the recipe of :func:`train_model`, from ``parser``'s seed."""
    output_dir = Path(output_dir)
    ckpt_dir = output_dir / "checkpoints"
    set_determinism(int(parser["seed"]))
    cfg = parser.get_parsed_content("training")
    choice = checkpoint_choice(cfg)  # a bad value fails before training
    run = build_training_run(parser, train_items, val_items, ctx)
    _attach_handlers(run, output_dir, ctx, progress)
    if resume:
        _resume(run, ckpt_dir)
    start = time.perf_counter()
    with interrupt_between_iterations(run.trainer):  # Ctrl-C: after the iteration, never inside a handler
        run.trainer.run()
    seconds = time.perf_counter() - start
    _best_network(run, ckpt_dir, ctx, choice)
    batch_size = int(cfg["batch_size"])
    val, threshold = _calibrated(run.eval_network, run.anomaly_map, val_items, ctx, batch_size, parser.get_parsed_content("scoring"), run.memory_format)
    model_path = _save(parser, run, output_dir, threshold) if ctx.is_main else None
    if ctx.enabled:
        torch.distributed.barrier()
    return TrainResult(run.network, model_path, threshold, run.progress.history, int(run.trainer.state.iteration), seconds, normal_mse(val))
