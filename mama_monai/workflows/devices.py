"""Which device a command runs on: one rule for the CLI, ``score``, torchrun and the bundle.

``"auto"`` is CUDA when this machine has it, else the CPU; any other name is taken as
``torch.device(name)``; CUDA asked for where there is none is refused with one message naming
the value and the way out (``--device cpu``).
"""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else -> ``torch.device(device)``.

    Raises:
        ValueError: CUDA asked for on a machine without it, or a name torch does not know.
    """
    name = str(device)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        resolved = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"device {name!r} is not a device name (expected auto, cpu, cuda or cuda:N): {err}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} was asked for, but CUDA is not available on this machine; use --device cpu.")
    return resolved
