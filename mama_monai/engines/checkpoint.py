"""The deployable model file: weights, full config, preprocessing, threshold and versions in one file.

Saved with :func:`torch.save` as plain containers of tensors, strings and numbers, so that it loads
with ``torch.load(..., weights_only=True)``: nothing in it is unpickled as arbitrary objects.
Nothing stored is evaluated either: every field is checked as plain data on load
(:mod:`mama_monai.engines.stored_config`), and the network is rebuilt from the stored
``network_def`` only if it names one of this package's networks with literal arguments, never
through MONAI's ``ConfigParser``. The weights must match it exactly (checked on an empty
``meta``-device copy before any memory is allocated); anything else is refused with a clear error.
"""

from __future__ import annotations

import copy
import datetime
import os
import platform
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import monai
import torch
import torch.nn as nn

import mama_monai
from mama_monai.atomic import atomic_write
from mama_monai.engines.stored_config import StoredValueError, check_payload, network_spec

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
    """Load and check the file's contents (``weights_only=True``) without building the network.

    Returns:
        The checked payload: ``config``, ``threshold``, ``metrics``, ``versions``, ``state_dict``, ...
        as plain data (:func:`~mama_monai.engines.stored_config.check_payload`).

    Raises:
        CheckpointError: a missing, unreadable, foreign or newer file, or a stored value that is not
            plain data of the expected type and range (the message names the file and the key path).
    """
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
    if type(payload["format_version"]) is not int:
        raise CheckpointError(f"model file {str(path)!r} is refused: format_version must be an int, got {payload['format_version']!r}.")
    if payload["format_version"] > CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"model file {str(path)!r} has format_version {payload['format_version']}; this mama-monai "
            f"({mama_monai.__version__}) reads up to {CHECKPOINT_FORMAT_VERSION}. Upgrade mama-monai."
        )
    try:
        return check_payload(payload)
    except StoredValueError as err:
        raise CheckpointError(f"model file {str(path)!r} is refused: {err}") from None


def _mismatch(path: Path, expected: Dict[str, torch.Tensor], stored: Dict[str, torch.Tensor]) -> None:
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    shapes = sorted(k for k in set(expected) & set(stored) if expected[k].shape != stored[k].shape)
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"model file {str(path)!r} does not match its network_def in this code: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}, shape mismatch {shapes[:5]}."
        )


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> Tuple[nn.Module, Dict[str, Any]]:
    """Rebuild the network from a model file and load its weights; the network is in eval mode.

    The stored ``network_def`` must name one of this package's networks
    (:func:`~mama_monai.engines.stored_config.network_classes`) with literal arguments of its
    ``__init__``; it is built on the ``meta`` device first (no memory), its parameter shapes are
    compared with the stored weights, and only then built for real.

    Args:
        path: the model file.
        device: where the network goes (default ``"cpu"``).

    Returns:
        ``(network, payload)``: ``payload`` holds ``config``, ``threshold``, ``metrics`` and ``versions``.

    Raises:
        CheckpointError: missing, corrupted or foreign file, a stored value that is not allowed
            (:func:`read_checkpoint`), or weights that do not match the stored ``network_def``
            (the message lists missing / unexpected / mis-shaped keys).
    """
    path = Path(path)
    payload = read_checkpoint(path)
    cls, kwargs = network_spec(payload["config"]["network_def"])
    try:
        with torch.device("meta"):
            skeleton = cls(**copy.deepcopy(kwargs))
    except Exception as err:
        raise CheckpointError(
            f"model file {str(path)!r}: its network_def cannot be built by this code "
            f"(mama-monai {mama_monai.__version__}, saved with {payload['versions'].get('mama_monai')}): {err}"
        ) from None
    _mismatch(path, skeleton.state_dict(), payload["state_dict"])
    network = cls(**copy.deepcopy(kwargs))
    network.load_state_dict(payload["state_dict"])
    return network.to(device).eval(), payload
