"""Anomaly scoring on MONAI's engines: reconstruction, anomaly map and image score per case."""

from __future__ import annotations

from typing import Any, Dict, Optional

import torch
from monai.engines import SupervisedEvaluator
from monai.utils import CommonKeys as Keys

from mama_monai.engines.anomaly_map import AnomalyMap
from mama_monai.engines.batches import batch_images, in_layout

__all__ = ["AnomalyEvaluator"]


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
