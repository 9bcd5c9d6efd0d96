"""Anomaly scoring on MONAI's engines: reconstruction, anomaly map and image score per case."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Dict, Optional

import numpy as np
import torch
from ignite.engine import Events
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator
from monai.utils import CommonKeys as Keys

from mama_monai.engines.anomaly_map import AnomalyMap
from mama_monai.engines.batches import batch_images, in_layout

__all__ = ["AnomalyEvaluator", "score_items"]

_ITEM_KEYS = ("image", "label")


class AnomalyEvaluator(SupervisedEvaluator):
    """:class:`~monai.engines.SupervisedEvaluator` that scores reconstructions.

    Only ``_iteration`` is overridden. Each batch's ``engine.state.output`` holds ``image``,
    ``pred`` (reconstruction), ``map`` (anomaly map ``(B, 1, *S)``), ``score`` (``(B,)``) and
    ``label`` (``(B,)``, when the batch has one), all on the CPU, ready for metrics such as
    MONAI's ``ROCAUC`` handler (``output_transform=from_engine(["score", "label"])``).

    Args:
        anomaly_map: the :class:`~mama_monai.engines.anomaly_map.AnomalyMap` scorer.
        memory_format: the layout inputs are handed to the network in (e.g.
            ``torch.channels_last``); ``None`` (default) leaves them as they come.
        **kwargs: :class:`~monai.engines.SupervisedEvaluator` arguments (``device``,
            ``val_data_loader``, ``network``, ``key_val_metric``, ``val_handlers``, ``amp`` ...).
            ``decollate`` is forced to False: outputs are batched tensors.
    """

    def __init__(self, anomaly_map: AnomalyMap, memory_format: Optional[torch.memory_format] = None, **kwargs: Any) -> None:
        kwargs["decollate"] = False
        super().__init__(**kwargs)
        self.anomaly_map = anomaly_map.to(self.state.device)
        self.memory_format = memory_format

    def _iteration(self, engine: "AnomalyEvaluator", batchdata: Dict[str, Any]) -> Dict[str, Any]:
        inputs = batch_images(engine, batchdata)
        use_amp = engine.amp and inputs.device.type == "cuda"
        with engine.mode(engine.network), torch.no_grad():
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                reconstruction = engine.network(in_layout(inputs, engine.memory_format))
            maps = engine.anomaly_map.map(inputs, reconstruction)
            scores = engine.anomaly_map.score(maps)
        output = {
            Keys.IMAGE: inputs.cpu(),
            Keys.PRED: reconstruction.float().cpu(),
            "map": maps.cpu(),
            "score": scores.cpu(),
        }
        if Keys.LABEL in batchdata:
            output[Keys.LABEL] = torch.as_tensor(batchdata[Keys.LABEL]).reshape(-1).cpu()
        engine.state.output = output
        return output


def score_items(
    network: torch.nn.Module,
    anomaly_map: AnomalyMap,
    items: Sequence[dict],
    device: torch.device,
    batch_size: int = 16,
    amp: bool = False,
    memory_format: Optional[torch.memory_format] = None,
) -> Dict[str, np.ndarray]:
    """Run an :class:`AnomalyEvaluator` over ``items`` (dicts with ``image`` and ``label``); gather
    ``score``, ``label``, ``map``, ``image`` and ``pred`` (reconstruction) as numpy arrays in item
    order. ``network`` may be compiled; ``memory_format`` is the input layout it wants (channels-last)."""
    collected: Dict[str, list] = {"score": [], "label": [], "map": [], "image": [], "pred": []}
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
