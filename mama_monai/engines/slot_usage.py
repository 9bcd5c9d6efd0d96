"""An ignite handler that counts the memory slots read during each epoch."""

from __future__ import annotations

import math

import torch
from ignite.engine import Engine, Events

__all__ = ["SlotUsageHandler", "slot_statistics"]


def slot_statistics(counts: torch.Tensor) -> dict[str, float]:
    """``slots_used`` (slots read at least once) and ``slot_perplexity`` (``exp`` of the entropy of
    the read distribution: N for N slots read equally often, 1 when one slot answers everything)
    from per-slot read counts."""
    counts = counts.double()
    total = float(counts.sum())
    if total <= 0:
        return {"slots_used": 0, "slot_perplexity": 0.0}
    p = counts[counts > 0] / total
    return {"slots_used": int((counts > 0).sum()), "slot_perplexity": float(math.exp(float(-(p * p.log()).sum())))}


class SlotUsageHandler:
    """Puts ``slots_used`` and ``slot_perplexity`` of the epoch's reads into ``engine.state.metrics``.

    Reads ``engine.state.output["memory_indices"]`` (set by
    :class:`~mama_monai.engines.trainer.AnomalyTrainer`); networks without memory report 0.
    A memory that reads only a handful of its N slots, or reads a few of them far more often
    than the rest (perplexity much below ``slots_used``), has collapsed: this makes it visible.
    """

    def __init__(self) -> None:
        self._counts: torch.Tensor | None = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._update)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._store)

    def _reset(self, engine: Engine) -> None:
        self._counts = None

    def _update(self, engine: Engine) -> None:
        indices = engine.state.output.get("memory_indices")
        if indices is None or indices.numel() == 0:
            return
        counts = torch.bincount(indices.detach().flatten().cpu())
        if self._counts is None:
            self._counts = counts
        else:
            n = max(counts.numel(), self._counts.numel())
            self._counts = torch.nn.functional.pad(self._counts, (0, n - self._counts.numel())) + torch.nn.functional.pad(
                counts, (0, n - counts.numel())
            )

    def _store(self, engine: Engine) -> None:
        stats = slot_statistics(self._counts) if self._counts is not None else {"slots_used": 0, "slot_perplexity": 0.0}
        engine.state.metrics.update(stats)
