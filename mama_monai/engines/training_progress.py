"""What a training run tracks between validations: history, best network, early stopping.

:class:`TrainingProgress` is the state (saved in every ``last_*.pt`` checkpoint so that a resumed
run loses nothing); :class:`ValidationRecorder` is the ignite handler that, after each
validation, records one row (iteration, loss, slot usage, held-out normal error, validation
AUROC), warns when a memory network has collapsed, writes the best network so far and stops
training early.

"Best" follows one criterion of the row (:data:`CRITERIA`): the lowest held-out normal error
(``val_normal_mse``, normal data only) or the highest validation AUROC (``val_auroc``, on real or
SIMULATED lesions).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from torch import nn

from mama_monai.atomic import atomic_write

__all__ = ["CRITERIA", "TrainingProgress", "ValidationRecorder", "improves", "warn_unused_memory"]

logger = logging.getLogger(__name__)

#: history-row key -> whether larger is better
CRITERIA = {"val_normal_mse": False, "val_auroc": True}


def improves(criterion: str, value: float, best: float | None) -> bool:
    """Whether ``value`` of ``criterion`` is strictly better than ``best`` (any value beats None):
    the one rule by which a network is kept (:meth:`TrainingProgress.update`, and
    ``workflows.training.kept_validation`` reading a history afterwards), so a tie keeps the
    earlier network."""
    return best is None or (value > best if CRITERIA[criterion] else value < best)


class TrainingProgress:
    """What a resumed run must not lose, saved in every ``last_*.pt`` checkpoint: the validation
    history, the best value of the criterion and the early-stopping count.

    ``update(row)`` records one validation and says whether it is the best so far by
    ``criterion`` (a key of :data:`CRITERIA`; rows without it never are); ``should_stop()`` is
    True after ``patience`` validations without improvement (``patience`` 0 never stops).
    """

    def __init__(self, patience: int = 0, criterion: str = "val_auroc") -> None:
        if criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {list(CRITERIA)}, got {criterion!r}.")
        self.patience, self.criterion = patience, criterion
        self.history: list[dict[str, Any]] = []
        self.best: float | None = None
        self.stale = 0

    def update(self, row: dict[str, Any]) -> bool:
        self.history.append(row)
        value = row.get(self.criterion)
        if value is None:
            return False
        if improves(self.criterion, value, self.best):
            self.best, self.stale = value, 0
            return True
        self.stale += 1
        return False

    def should_stop(self) -> bool:
        return self.patience > 0 and self.stale >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history), "best": self.best, "stale": self.stale, "criterion": self.criterion}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("criterion", "val_auroc")  # checkpoints written before the criterion was a choice
        if saved != self.criterion:
            raise ValueError(
                f"the checkpoint's best network was chosen by {saved!r}, this run chooses by {self.criterion!r} "
                "(training#checkpoint changed): resume with the run's own training#checkpoint, or start afresh."
            )
        self.history = list(state["history"])
        self.best = state["best"]
        self.stale = int(state["stale"])


def warn_unused_memory(network: nn.Module, row: dict[str, Any]) -> None:
    """Log a warning when a memory network read fewer than 10 % of its slots in the last block:
    a collapsed memory (DESIGN.md §8) must not pass silently."""
    memory = getattr(network, "memory", None)
    num_slots = getattr(memory, "num_slots", None)
    if num_slots and row["slots_used"] < 0.1 * num_slots:
        logger.warning(
            "memory collapse: %d of %d slots read in the validation block ending at iteration %d (perplexity %.1f)",
            row["slots_used"], num_slots, row["iteration"], row["slot_perplexity"],
        )  # fmt: skip


class ValidationRecorder:
    """After each validation (the evaluator's ``EPOCH_COMPLETED``): one history row, the best
    network to ``best_path`` (on the main process, atomically) and early stopping.

    Args:
        trainer: the training engine (its iteration, last loss and slot metrics go into the row).
        network: the unwrapped network whose weights are saved as the best.
        progress: the :class:`TrainingProgress` updated.
        best_path: where the best network's ``state_dict`` is written.
        with_auroc: whether the evaluator computes ``val_auroc`` (validation holds anomalies).
            ``val_normal_mse`` goes into the row whenever the evaluator computes it.
        is_main: whether this process writes files and logs the rows.
    """

    def __init__(
        self, trainer: Engine, network: nn.Module, progress: TrainingProgress, best_path: Path, with_auroc: bool, is_main: bool
    ) -> None:
        self.trainer, self.network, self.progress = trainer, network, progress
        self.best_path, self.with_auroc, self.is_main = Path(best_path), with_auroc, is_main

    def attach(self, evaluator: Engine) -> None:
        evaluator.add_event_handler(Events.EPOCH_COMPLETED, self)

    def row(self, evaluator: Engine) -> dict[str, Any]:
        """The history row of the validation that ``evaluator`` has just run."""
        state = self.trainer.state
        row = {
            "iteration": state.iteration,
            "loss": float(state.output["loss"]),
            "slots_used": int(state.metrics.get("slots_used", 0)),
            "slot_perplexity": round(float(state.metrics.get("slot_perplexity", 0.0)), 2),
        }
        if "val_normal_mse" in evaluator.state.metrics:
            row["val_normal_mse"] = float(evaluator.state.metrics["val_normal_mse"])
        if self.with_auroc:
            row["val_auroc"] = float(evaluator.state.metrics["val_auroc"])
        return row

    def __call__(self, evaluator: Engine) -> None:
        row = self.row(evaluator)
        warn_unused_memory(self.network, row)
        improved = self.progress.update(row)
        if self.is_main:
            logger.info("validation %s", row)
            if improved:
                atomic_write(self.best_path, lambda f: torch.save(self.network.state_dict(), f))
        if self.progress.should_stop():
            logger.info("early stopping: no better %s in %d validations", self.progress.criterion, self.progress.patience)
            self.trainer.terminate()
