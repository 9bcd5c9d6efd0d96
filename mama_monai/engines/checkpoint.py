"""The deployable model file: weights, full config, preprocessing, threshold and versions in one file.

Saved with :func:`torch.save` as plain containers of tensors, strings and numbers, so that it loads
with ``torch.load(..., weights_only=True)``: nothing in it is unpickled as arbitrary objects.
The network is rebuilt from the stored ``network_def`` (a MONAI bundle component) and the
weights must match it exactly; anything else is refused with a clear error.
"""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import monai
import torch
import torch.nn as nn
from monai.bundle import ConfigParser

import mama_monai
from mama_monai.atomic import atomic_write

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FORMAT_VERSION",
    "CheckpointError",
    "load_model",
    "read_checkpoint",
    "save_model",
    "versions",
]

CHECKPOINT_FORMAT = "mama-monai-model"
CHECKPOINT_FORMAT_VERSION = 1
_REQUIRED = ("format", "format_version", "state_dict", "config", "threshold", "versions")


class CheckpointError(ValueError):
    """A model file that is not a mama-monai checkpoint, is corrupted, or does not match the code."""


def versions() -> Dict[str, str]:
    """Versions recorded in every checkpoint."""
    return {
        "mama_monai": mama_monai.__version__,
        "monai": monai.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def _plain(value: Any, where: str) -> Any:
    """Plain data only (what ``weights_only=True`` loads): dicts, lists, str, numbers, bool, None."""
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):
        return str(value)  # str subclasses (e.g. torch's TorchVersion) are not plain
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):  # int() / float(): numpy.float64 is a float subclass, not plain
        return int(value) if isinstance(value, int) else float(value)
    if isinstance(value, os.PathLike):
        return str(value)
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalars
        return value.item()
    raise ValueError(f"{where} must be plain data (dict, list, str, number, bool, None) to be stored in a model file, got {type(value).__name__}.")


def save_model(
    path: str | os.PathLike,
    network: nn.Module,
    config: Dict[str, Any],
    threshold: Dict[str, Any],
    metrics: Optional[Dict[str, Any]] = None,
) -> Path:
    """Write the deployable model file atomically (temporary file in the same folder, then rename).

    Args:
        path: output file, e.g. ``model.pt``.
        network: the trained network (bare, not wrapped).
        config: plain-data config; must hold ``network_def`` (resolved bundle component),
            ``preprocessing`` (``preset``, ``spatial_size``, ``modality``) and ``scoring``
            (``sigma``, ``reduction``).
        threshold: ``{"value": float, "method": str, ...}`` calibrated on held-out data.
        metrics: optional validation metrics to keep with the model.

    Returns:
        The path written.
    """
    for key in ("network_def", "preprocessing", "scoring"):
        if key not in config:
            raise ValueError(f"config must contain {key!r} to save a model, got keys {sorted(config)}.")
    if "value" not in threshold:
        raise ValueError(f"threshold must contain 'value', got {threshold!r}.")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "state_dict": {k: v.detach().cpu() for k, v in network.state_dict().items()},
        "config": _plain(config, "config"),
        "threshold": _plain(threshold, "threshold"),
        "metrics": _plain(metrics or {}, "metrics"),
        "versions": _plain(versions(), "versions"),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return atomic_write(path, lambda f: torch.save(payload, f))


def read_checkpoint(path: str | os.PathLike) -> Dict[str, Any]:
    """Load and validate the file's contents (``weights_only=True``) without building the network."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file {str(path)!r} does not exist.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, empty, not a torch file, or holds arbitrary objects
        first_line = (str(err).splitlines() or [""])[0]
        raise CheckpointError(
            f"model file {str(path)!r} cannot be read as a mama-monai checkpoint "
            f"(corrupted, truncated or not made by mama-monai): {type(err).__name__}: {first_line}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"model file {str(path)!r} is not a mama-monai checkpoint (format {CHECKPOINT_FORMAT!r} expected).")
    missing = [k for k in _REQUIRED if k not in payload]
    if missing:
        raise CheckpointError(f"model file {str(path)!r} lacks {missing}; it is incomplete or corrupted.")
    if payload["format_version"] > CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"model file {str(path)!r} has format_version {payload['format_version']}; this mama-monai "
            f"({mama_monai.__version__}) reads up to {CHECKPOINT_FORMAT_VERSION}. Upgrade mama-monai."
        )
    return payload


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> Tuple[nn.Module, Dict[str, Any]]:
    """Rebuild the network from a model file and load its weights; the network is in eval mode.

    Returns:
        ``(network, payload)``: ``payload`` holds ``config``, ``threshold``, ``metrics`` and ``versions``.

    Raises:
        CheckpointError: missing, corrupted or foreign file, or weights that do not match the
            stored ``network_def`` (the message lists missing / unexpected / mis-shaped keys).
    """
    payload = read_checkpoint(path)
    try:
        network = ConfigParser({"network_def": payload["config"]["network_def"]}).get_parsed_content("network_def")
    except Exception as err:
        raise CheckpointError(
            f"model file {str(path)!r}: its network_def cannot be built by this code "
            f"(mama-monai {mama_monai.__version__}, saved with {payload['versions'].get('mama_monai')}): {err}"
        ) from None
    expected = network.state_dict()
    stored = payload["state_dict"]
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    shapes = sorted(k for k in set(expected) & set(stored) if expected[k].shape != stored[k].shape)
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"model file {str(path)!r} does not match its network_def in this code: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}, shape mismatch {shapes[:5]}."
        )
    network.load_state_dict(stored)
    return network.to(device).eval(), payload
