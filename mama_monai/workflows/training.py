"""Train a network on normal slices with MONAI's engines, validate, calibrate, save the model file.

The schedule is counted in iterations (the paper: 70k of batch 8). Ignite epochs are blocks of
``val_interval`` iterations: after each block the model is validated (image AUROC), the
``last`` training checkpoint (network, optimizer, trainer state) is written, and the best
network by validation AUROC is kept. ``resume=True`` continues from the last checkpoint, so a run
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

import numpy as np
import torch
from ignite.engine import Events
from ignite.handlers import Checkpoint, DiskSaver
from monai.bundle import ConfigParser
from monai.data import DataLoader, Dataset
from monai.handlers import (
    ROCAUC,
    CheckpointLoader,
    StatsHandler,
    TensorBoardStatsHandler,
    ValidationHandler,
    from_engine,
)
from monai.utils import set_determinism
from torch import nn
from torch.utils.data import DistributedSampler

from mama_monai.atomic import atomic_write
from mama_monai.engines import (
    Acceleration,
    AnomalyEvaluator,
    AnomalyMap,
    AnomalyTrainer,
    DetailedForward,
    SlotUsageHandler,
    anomaly_map_args,
    save_model,
)
from mama_monai.evaluation import best_f1_threshold, calibrate_threshold
from mama_monai.workflows.config import resolved
from mama_monai.workflows.distributed import DistributedContext, register_comm_hook

__all__ = ["LAST_CHECKPOINT_PREFIX", "TrainResult", "TrainingProgress", "calibrate_thresholds", "score_items", "train_model"]

logger = logging.getLogger(__name__)
LAST_CHECKPOINT_PREFIX = "last"
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


def _loader(items: Sequence[dict], batch_size: int, shuffle: bool, ctx: DistributedContext, drop_last: bool) -> DataLoader:
    """Batches of the in-memory slices, collated in this process: no worker processes and no
    ``ThreadDataLoader``: collating preprocessed slices runs at over 10,000 images/s on one CPU
    core (batch 8 at 228 x 228; ``benchmarks/loader.py``), 40x the 250 images/s training target,
    and a ``ThreadDataLoader`` measured slower. On CUDA, batches are collated into pinned memory:
    faster host-to-device copies, asynchronous where the engine has ``non_blocking``."""
    data = Dataset([{k: item[k] for k in _ITEM_KEYS} for item in items])
    sampler = DistributedSampler(data, ctx.world_size, ctx.rank, shuffle=shuffle) if ctx.enabled and shuffle else None
    return DataLoader(
        data,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=0,
        pin_memory=ctx.device.type == "cuda",
    )


class TrainingProgress:
    """What a resumed run must not lose, saved in every ``last_*.pt`` checkpoint: the validation
    history, the best validation AUROC and the early-stopping count.

    ``update(row)`` records one validation and says whether it is the best so far (rows without
    ``val_auroc`` never are); ``should_stop()`` is True after ``patience`` validations without
    improvement (``patience`` 0 never stops).
    """

    def __init__(self, patience: int = 0) -> None:
        self.patience = patience
        self.history: list[dict[str, Any]] = []
        self.best: float | None = None
        self.stale = 0

    def update(self, row: dict[str, Any]) -> bool:
        self.history.append(row)
        value = row.get("val_auroc")
        if value is None:
            return False
        if self.best is None or value > self.best:
            self.best, self.stale = value, 0
            return True
        self.stale += 1
        return False

    def should_stop(self) -> bool:
        return self.patience > 0 and self.stale >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history), "best": self.best, "stale": self.stale}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = list(state["history"])
        self.best = state["best"]
        self.stale = int(state["stale"])


def _loss_value(output: dict) -> float:
    return float(output["loss"])


def _last_checkpoint(folder: Path) -> Path | None:
    found = sorted(folder.glob(f"{LAST_CHECKPOINT_PREFIX}_*.pt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def score_items(
    network: nn.Module,
    anomaly_map: AnomalyMap,
    items: Sequence[dict],
    device: torch.device,
    batch_size: int = 16,
    amp: bool = False,
    memory_format: torch.memory_format | None = None,
) -> dict[str, np.ndarray]:
    """Run an :class:`~mama_monai.engines.AnomalyEvaluator` over ``items``; gather ``score``,
    ``label``, ``map``, ``image`` and ``pred`` (reconstruction) as numpy arrays in item order.
    ``network`` may be compiled; ``memory_format`` is the input layout it wants (channels-last)."""
    collected: dict[str, list] = {"score": [], "label": [], "map": [], "image": [], "pred": []}
    evaluator = AnomalyEvaluator(
        anomaly_map=anomaly_map,
        device=device,
        val_data_loader=DataLoader(Dataset([{k: it[k] for k in _ITEM_KEYS} for it in items]), batch_size=batch_size),
        network=network,
        amp=amp,
        memory_format=memory_format,
    )

    @evaluator.on(Events.ITERATION_COMPLETED)
    def _gather(engine):
        for key in collected:
            collected[key].append(engine.state.output[key].float().numpy() if key != "label" else engine.state.output[key].numpy())

    evaluator.run()
    return {k: np.concatenate(v) for k, v in collected.items()}


def _warn_unused_memory(network: nn.Module, row: dict[str, Any]) -> None:
    """Log a warning when a memory network read fewer than 10 % of its slots in the last block:
    a collapsed memory (DESIGN.md §8) must not pass silently."""
    memory = getattr(network, "memory", None)
    num_slots = getattr(memory, "num_slots", None)
    if num_slots and row["slots_used"] < 0.1 * num_slots:
        logger.warning(
            "memory collapse: %d of %d slots read in the validation block ending at iteration %d (perplexity %.1f)",
            row["slots_used"], num_slots, row["iteration"], row["slot_perplexity"],
        )  # fmt: skip


def calibrate_thresholds(val: dict[str, np.ndarray], quantile: float) -> dict[str, Any]:
    """The model's decision thresholds, from the held-out *normal* validation slices only.

    ``value`` is the ``quantile`` of their scores (the configured reduction); ``mean_error`` the
    same quantile of their mean squared error (the paper's e_u), so that every operating point a
    report gives comes from validation normals, never from the test set. Where anomalies
    (SIMULATED) are in the validation set, the best-F1 threshold on it is recorded beside, for
    information. With ``n`` normals a quantile ``q`` is resolved only when ``n >= 1 / (1 - q)``
    (20 normals for 0.95: one of them expected above the threshold); fewer is recorded as a
    ``warning`` in the result and logged.

    Args:
        val: :func:`score_items` output of the validation slices (``score``, ``label``, ``image``, ``pred``).
        quantile: in ``(0, 1]``.
    """
    normal = val["label"] == 0
    scores = val["score"][normal]
    mean_error = ((val["image"] - val["pred"]) ** 2).reshape(len(val["label"]), -1).mean(axis=1)
    primary = calibrate_threshold(scores, quantile=quantile)
    paper = calibrate_threshold(mean_error[normal], quantile=quantile)
    threshold: dict[str, Any] = {
        "value": float(primary.value),
        "method": primary.method,
        "quantile": float(quantile),
        "n_normals": int(scores.size),
        "mean_error": {"value": float(paper.value), "method": paper.method},
    }
    needed = int(np.ceil(1.0 / (1.0 - quantile) - 1e-9)) if quantile < 1 else 1
    if scores.size < needed:
        threshold["warning"] = (
            f"{scores.size} validation normals resolve the {quantile:g} quantile only coarsely "
            f"(>= {needed} needed); the false-positive rate on new normals is uncertain"
        )
        logger.warning("threshold: %s", threshold["warning"])
    if (val["label"] == 1).any() and normal.any():
        alt = best_f1_threshold(val["score"], val["label"])
        threshold["best_f1_on_validation"] = {"value": float(alt.value), "method": alt.method}
    return threshold


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

    Args:
        parser: the workflow config (see ``configs/train.yaml``): ``seed``, ``network_def``,
            ``loss``, ``optimizer``, ``training``, ``scoring``, ``data``.
        train_items: normal slices (dicts with ``image`` ``(C, H, W)`` and ``label`` 0).
        val_items: held-out slices; normals calibrate the threshold; with anomalies (real or
            SIMULATED) the validation AUROC selects the best network.
        output_dir: where ``checkpoints/``, ``tensorboard/`` and ``model.pt`` go.
        ctx: the :class:`~mama_monai.workflows.distributed.DistributedContext`.
        resume: continue from the last checkpoint in ``output_dir/checkpoints``.
        progress: show a progress bar (rank 0).

    Returns:
        A :class:`TrainResult`; ``model_path`` is ``output_dir/model.pt`` (None on ranks > 0).
    """
    output_dir = Path(output_dir)
    ckpt_dir = output_dir / "checkpoints"
    cfg = parser.get_parsed_content("training")
    set_determinism(int(parser["seed"]))
    accel = Acceleration.from_config(parser.get_parsed_content("runtime") if "runtime" in parser else None, ctx.device)
    network = accel.prepare_network(parser.get_parsed_content("network_def", lazy=False).to(ctx.device))
    memory_format = accel.memory_format(int(getattr(network, "spatial_dims", 2)))
    model: nn.Module = DetailedForward(network)
    if ctx.enabled:
        if ctx.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            network = model.network
        model = nn.parallel.DistributedDataParallel(model, device_ids=[ctx.device] if ctx.device.type == "cuda" else None)
    register_comm_hook(model, cfg.get("ddp_comm_hook"))  # training#ddp_comm_hook; also checks the name in one process
    model = accel.compiled(model)  # compile(DDP(model)), the order PyTorch's DDP + compile guide uses
    eval_network = accel.compiled(network)
    opt_cfg = parser.get_parsed_content("optimizer")
    optimizer = accel.adam(network.parameters(), lr=float(opt_cfg["lr"]), weight_decay=float(opt_cfg.get("weight_decay", 0.0)))
    scoring = parser.get_parsed_content("scoring")
    anomaly_map = AnomalyMap(2, **anomaly_map_args(scoring))
    iterations, interval = int(cfg["iterations"]), int(cfg["val_interval"])
    if iterations < 1 or interval < 1 or iterations % interval:
        raise ValueError(
            f"training#iterations ({iterations}) must be a positive multiple of training#val_interval ({interval})."
        )
    amp = bool(cfg.get("amp", True)) and ctx.device.type == "cuda"
    has_anomalies = any(int(it["label"]) == 1 for it in val_items)

    evaluator = AnomalyEvaluator(
        anomaly_map=anomaly_map,
        device=ctx.device,
        val_data_loader=_loader(val_items, int(cfg["batch_size"]), False, ctx, drop_last=False),
        network=eval_network,
        amp=amp,
        memory_format=memory_format,
        non_blocking=ctx.device.type == "cuda",  # batches are pinned on CUDA: copy asynchronously
        key_val_metric={"val_auroc": ROCAUC(output_transform=from_engine(["score", "label"]))} if has_anomalies else None,
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
        non_blocking=ctx.device.type == "cuda",
    )
    SlotUsageHandler().attach(trainer)
    ValidationHandler(validator=evaluator, interval=1, epoch_level=True).attach(trainer)
    progress_state = TrainingProgress(int(cfg.get("early_stopping_patience") or 0))

    @evaluator.on(Events.EPOCH_COMPLETED)
    def _record(engine):
        row = {
            "iteration": trainer.state.iteration,
            "loss": float(trainer.state.output["loss"]),
            "slots_used": int(trainer.state.metrics.get("slots_used", 0)),
            "slot_perplexity": round(float(trainer.state.metrics.get("slot_perplexity", 0.0)), 2),
        }
        _warn_unused_memory(network, row)
        if has_anomalies:
            row["val_auroc"] = float(engine.state.metrics["val_auroc"])
        improved = progress_state.update(row)
        if ctx.is_main:
            logger.info("validation %s", row)
            if improved:
                atomic_write(ckpt_dir / "best_network.pt", lambda f: torch.save(network.state_dict(), f))
        if progress_state.should_stop():
            logger.info("early stopping: no better val_auroc in %d validations", progress_state.patience)
            trainer.terminate()

    if ctx.is_main:
        # ignite's Checkpoint directly: MONAI's CheckpointSaver writes in place (atomic=False) and deletes the
        # previous file first, so a kill while saving left no usable checkpoint. Atomic writes + keeping
        # the previous one mean the newest complete last_*.pt always survives.
        trainer.add_event_handler(
            Events.EPOCH_COMPLETED,
            Checkpoint(
                {"network": network, "optimizer": optimizer, "trainer": trainer, "progress": progress_state},
                DiskSaver(str(ckpt_dir), require_empty=False, atomic=True),
                filename_prefix=LAST_CHECKPOINT_PREFIX,
                score_function=lambda engine: engine.state.epoch,
                score_name="epoch",
                n_saved=2,
            ),
        )
        StatsHandler(name="mama_monai.train", iteration_log=False, output_transform=_loss_value).attach(trainer)
        TensorBoardStatsHandler(log_dir=str(output_dir / "tensorboard"), output_transform=_loss_value).attach(trainer)
        TensorBoardStatsHandler(
            log_dir=str(output_dir / "tensorboard"), iteration_log=False, global_epoch_transform=lambda epoch: trainer.state.iteration
        ).attach(evaluator)
        if progress:
            from ignite.handlers import ProgressBar

            ProgressBar(persist=False, desc="train").attach(trainer, output_transform=lambda out: {"loss": _loss_value(out)})
    if resume:
        from mama_monai.workflows.resume import set_aside_unreadable

        set_aside_unreadable(ckpt_dir, LAST_CHECKPOINT_PREFIX)  # a truncated newest checkpoint: resume from the one before
        last = _last_checkpoint(ckpt_dir)
        if last is None:
            raise ValueError(f"--resume: no '{LAST_CHECKPOINT_PREFIX}_*.pt' checkpoint in {str(ckpt_dir)!r} to resume from.")
        CheckpointLoader(
            load_path=str(last),
            load_dict={"network": network, "optimizer": optimizer, "trainer": trainer, "progress": progress_state},
        ).attach(trainer)

    start = time.perf_counter()
    trainer.run()
    seconds = time.perf_counter() - start
    if ctx.enabled:  # rank 0 has finished writing best_network.pt before any rank reads it
        torch.distributed.barrier()

    best = ckpt_dir / "best_network.pt"
    if has_anomalies and best.is_file():
        network.load_state_dict(torch.load(best, map_location=ctx.device, weights_only=True))
    network.eval()
    val = score_items(eval_network, anomaly_map, val_items, ctx.device, int(cfg["batch_size"]), amp, memory_format)
    threshold = calibrate_thresholds(val, float(scoring["threshold_quantile"]))
    model_path = None
    if ctx.is_main:
        config = {
            "network_def": resolved(parser, "network_def"),
            "preprocessing": dict(parser.get_parsed_content("data")),
            "scoring": anomaly_map_args(scoring),
            "loss": resolved(parser, "loss"),
            "training": dict(cfg),
        }
        metrics = {"history": progress_state.history, "iterations": int(trainer.state.iteration)}
        model_path = save_model(output_dir / "model.pt", network, config, threshold, metrics)
    if ctx.enabled:
        torch.distributed.barrier()
    return TrainResult(network, model_path, threshold, progress_state.history, int(trainer.state.iteration), seconds)
