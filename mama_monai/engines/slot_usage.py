"""An ignite handler that counts the memory slots read during each epoch."""

from __future__ import annotations

import torch
from ignite.engine import Engine, Events

__all__ = ["SlotUsageHandler"]


class SlotUsageHandler:
    """Puts ``slots_used`` (distinct slots read in the epoch) into ``engine.state.metrics``.

    Reads ``engine.state.output["memory_indices"]`` (set by
    :class:`~mama_monai.engines.trainer.AnomalyTrainer`); networks without memory report 0.
    A hash memory that reads only a handful of its N slots has collapsed: this makes it visible.
    """

    def __init__(self) -> None:
        self._seen: torch.Tensor | None = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._update)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._store)

    def _reset(self, engine: Engine) -> None:
        self._seen = None

    def _update(self, engine: Engine) -> None:
        indices = engine.state.output.get("memory_indices")
        if indices is None or indices.numel() == 0:
            return
        unique = indices.unique().cpu()
        self._seen = unique if self._seen is None else torch.cat([self._seen, unique]).unique()

    def _store(self, engine: Engine) -> None:
        engine.state.metrics["slots_used"] = 0 if self._seen is None else int(self._seen.numel())
