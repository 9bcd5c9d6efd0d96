"""What both engines do with a batch before the network sees it."""

from __future__ import annotations

from typing import Any, Dict, Optional

import torch
from monai.utils import CommonKeys as Keys

__all__ = ["batch_images", "in_layout"]


def batch_images(engine: Any, batchdata: Optional[Dict[str, Any]]) -> torch.Tensor:
    """The batch's images on ``engine.state.device`` (``engine.non_blocking`` copy), as a plain
    tensor (a ``MetaTensor``'s metadata dropped)."""
    if batchdata is None:
        raise ValueError("Must provide batch data for current iteration.")
    inputs = batchdata[Keys.IMAGE].to(engine.state.device, non_blocking=engine.non_blocking)
    return inputs.as_tensor() if hasattr(inputs, "as_tensor") else inputs


def in_layout(inputs: torch.Tensor, memory_format: Optional[torch.memory_format]) -> torch.Tensor:
    """``inputs`` in ``memory_format`` (e.g. ``torch.channels_last``); unchanged for ``None``."""
    return inputs if memory_format is None else inputs.contiguous(memory_format=memory_format)
