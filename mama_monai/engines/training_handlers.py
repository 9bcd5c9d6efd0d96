"""The handlers a training run attaches to MONAI's engines: checkpoints, logs, resume.

- :func:`attach_checkpointing`: the ``last_*.pt`` checkpoint (network, optimizer, trainer state,
  :class:`~mama_monai.engines.training_progress.TrainingProgress`) after every validation block.
  ignite's ``Checkpoint`` directly: MONAI's ``CheckpointSaver`` writes in place (``atomic=False``)
  and deletes the previous file first, so a kill while saving left no usable checkpoint. Atomic
  writes + keeping the previous one mean the newest complete ``last_*.pt`` always survives.
- :func:`attach_logging`: MONAI's ``StatsHandler`` and ``TensorBoardStatsHandler`` and, where
  wanted, ignite's progress bar.
- :func:`attach_resume`: MONAI's ``CheckpointLoader`` for the newest ``last_*.pt`` (random state
  included: :class:`~mama_monai.engines.random_state.RandomState`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver
from monai.handlers import CheckpointLoader, StatsHandler, TensorBoardStatsHandler

logger = logging.getLogger(__name__)

__all__ = ["LAST_CHECKPOINT_PREFIX", "attach_checkpointing", "attach_logging", "attach_resume", "last_checkpoint", "loss_value"]

#: file-name prefix of the checkpoints a run resumes from
LAST_CHECKPOINT_PREFIX = "last"


def loss_value(output: dict) -> float:
    """The training loss of one iteration's output, as a float."""
    return float(output["loss"])


def last_checkpoint(folder: Path) -> Path | None:
    """The newest ``last_*.pt`` in ``folder`` (by modification time), or None."""
    found = sorted(Path(folder).glob(f"{LAST_CHECKPOINT_PREFIX}_*.pt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def attach_checkpointing(trainer: Engine, objects: dict[str, Any], folder: Path) -> None:
    """Write ``objects`` to ``folder/last_checkpoint_epoch=E.pt`` after every epoch, atomically,
    keeping the two newest."""
    trainer.add_event_handler(
        Events.EPOCH_COMPLETED,
        Checkpoint(
            objects,
            DiskSaver(str(folder), require_empty=False, atomic=True),
            filename_prefix=LAST_CHECKPOINT_PREFIX,
            score_function=lambda engine: engine.state.epoch,
            score_name="epoch",
            n_saved=2,
        ),
    )


def attach_logging(trainer: Engine, evaluator: Engine, log_dir: Path, progress: bool) -> None:
    """Epoch losses to the ``mama_monai.train`` log; losses and validation metrics to TensorBoard
    in ``log_dir`` (validation at the trainer's iteration); a progress bar when ``progress``."""
    StatsHandler(name="mama_monai.train", iteration_log=False, output_transform=loss_value).attach(trainer)
    TensorBoardStatsHandler(log_dir=str(log_dir), output_transform=loss_value).attach(trainer)
    TensorBoardStatsHandler(
        log_dir=str(log_dir), iteration_log=False, global_epoch_transform=lambda epoch: trainer.state.iteration
    ).attach(evaluator)
    if progress:
        from ignite.handlers import ProgressBar

        ProgressBar(persist=False, desc="train").attach(trainer, output_transform=lambda out: {"loss": loss_value(out)})


def attach_resume(trainer: Engine, objects: dict[str, Any], folder: Path) -> Path:
    """Load ``objects`` from the newest ``last_*.pt`` in ``folder`` when ``trainer`` starts;
    returns that file. Raises ValueError naming ``folder`` when it holds none."""
    last = last_checkpoint(folder)
    if last is None:
        raise ValueError(f"--resume: no '{LAST_CHECKPOINT_PREFIX}_*.pt' checkpoint in {str(folder)!r} to resume from.")
    missing = [k for k in ("rng", "sampler") if k in objects and k not in torch.load(last, map_location="cpu", weights_only=True)]
    if missing:
        logger.warning("checkpoint %s holds no %s (an older version wrote it): the resumed run will not "
                       "repeat the interrupted one's draws exactly", last, " or ".join(missing))  # fmt: skip
        objects = {k: v for k, v in objects.items() if k not in missing}
    CheckpointLoader(load_path=str(last), load_dict=objects).attach(trainer)
    return last
