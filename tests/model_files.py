"""One writer of the tiny model files the tests score with: an untrained (or all-zero)
ConvAutoEncoder(channels=(4, 8)) saved by the product's ``save_model`` for the ``ct_lung`` preset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mama_monai.engines.checkpoint import save_model
from mama_monai.networks import ConvAutoEncoder

NETWORK_DEF = {"_target_": "mama_monai.networks.ConvAutoEncoder", "spatial_dims": 2, "in_channels": 1, "channels": [4, 8]}


def tiny_model_file(
    path: Path,
    threshold: float | dict[str, Any] = 0.05,
    modality: str | None = "CT",
    spatial_size: tuple[int, int] = (32, 32),
    scoring: dict[str, Any] | None = None,
    zero: bool = False,
    **preprocessing: Any,
) -> Path:
    """Write the model file at ``path`` (folders created) and return its path.

    Args:
        threshold: the stored threshold's value, or the whole threshold entry.
        modality, spatial_size, preprocessing: the stored preprocessing (preset ``ct_lung``).
        scoring: the stored AnomalyMap settings; default sigma 1, reduction max.
        zero: every weight 0, so the reconstruction is exactly 0 (the map is the input's square).
    """
    torch.manual_seed(0)
    network = ConvAutoEncoder(2, 1, channels=(4, 8))
    if zero:
        with torch.no_grad():
            for p in network.parameters():
                p.zero_()
    config = {
        "network_def": dict(NETWORK_DEF),
        "preprocessing": {"preset": "ct_lung", "spatial_size": list(spatial_size), "modality": modality, **preprocessing},
        "scoring": dict(scoring or {"sigma": 1.0, "reduction": "max"}),
    }
    entry = threshold if isinstance(threshold, dict) else {"value": threshold, "method": "quantile"}
    return save_model(Path(path), network, config, entry)
