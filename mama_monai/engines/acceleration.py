"""Speed settings for training and scoring: channels-last tensors, ``torch.compile``, fused Adam.

The ``runtime`` section of ``configs/train.yaml`` (or the ``score`` command's flags) becomes one
:class:`Acceleration`, applied where the workflows build their engines. None of them changes what
is computed; the tests check each against the plain eager network within a stated tolerance
(``tests/workflows/test_acceleration.py``):

- ``channels_last``: parameters and inputs in NHWC (NDHWC) layout. cuDNN's bf16 convolutions
  work in that layout and the global attention's heads become views instead of copies
  (:class:`~mama_monai.networks.GlobalCrossAttention`), so the NCHW<->NHWC copies seen in the GPU
  profile go away.
- ``compile``: :func:`torch.compile` of the training forward (inside DDP when distributed) and of
  the scoring network, with ``compile_mode`` one of :data:`COMPILE_MODES`;
  ``"reduce-overhead"`` adds CUDA graphs. The first call compiles (tens of seconds on a GPU);
  every distinct input shape and the train/eval switch compile once more. The networks' NaN check
  and the eager hash memory's cache check are the only graph breaks.
- ``fused_adam``: PyTorch's fused Adam kernel (one launch for all parameters).

``"auto"`` means on for CUDA and off for the CPU (``fused_adam``); ``channels_last`` and
``compile`` default to off until a GPU measurement says otherwise (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["COMPILE_MODES", "RUNTIME_KEYS", "Acceleration"]

#: ``torch.compile`` modes accepted by ``runtime#compile_mode``.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: the keys of the ``runtime`` config section.
RUNTIME_KEYS = ("channels_last", "compile", "compile_mode", "fused_adam")


def _switch(name: str, value: Any, device: torch.device) -> bool:
    if value == "auto":
        return device.type == "cuda"
    if isinstance(value, bool):
        return value
    raise ValueError(f"runtime#{name} must be 'auto', true or false, got {value!r}.")


@dataclass(frozen=True)
class Acceleration:
    """Resolved speed settings (see the module docstring); the defaults change nothing."""

    channels_last: bool = False
    compile: bool = False
    compile_mode: str = "default"
    fused_adam: bool = False

    def __post_init__(self) -> None:
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"runtime#compile_mode must be one of {COMPILE_MODES}, got {self.compile_mode!r}.")

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, device: torch.device | str) -> Acceleration:
        """From a ``runtime`` section; unknown keys and bad values raise ``ValueError`` naming them."""
        config = dict(config or {})
        unknown = sorted(set(config) - set(RUNTIME_KEYS))
        if unknown:
            raise ValueError(f"runtime has no key(s) {unknown}; expected some of {list(RUNTIME_KEYS)}.")
        device = torch.device(device)
        compile_ = config.get("compile", False)
        if not isinstance(compile_, bool):
            raise ValueError(f"runtime#compile must be true or false, got {compile_!r}.")
        return cls(
            channels_last=_switch("channels_last", config.get("channels_last", False), device),
            compile=compile_,
            compile_mode=str(config.get("compile_mode", "default")),
            fused_adam=_switch("fused_adam", config.get("fused_adam", "auto"), device),
        )

    @staticmethod
    def _format(spatial_dims: int) -> torch.memory_format:
        return torch.channels_last if spatial_dims == 2 else torch.channels_last_3d

    def prepare_network(self, network: nn.Module) -> nn.Module:
        """Convert ``network``'s parameters to channels-last in place (when on); returns it."""
        if self.channels_last:
            network.to(memory_format=self._format(int(getattr(network, "spatial_dims", 2))))
        return network

    def memory_format(self, spatial_dims: int) -> torch.memory_format | None:
        """The input layout the engines should hand the network, or None to leave inputs alone."""
        return self._format(spatial_dims) if self.channels_last else None

    def compiled(self, module: nn.Module) -> nn.Module:
        """``torch.compile(module)`` when on, else ``module``. Parameters stay shared: save and
        load the original module, not the compiled wrapper."""
        if not self.compile:
            return module
        return torch.compile(module, mode=None if self.compile_mode == "default" else self.compile_mode)

    def adam(self, params: Iterable[torch.Tensor], lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
        """Adam, fused when on (else PyTorch's default implementation)."""
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True if self.fused_adam else None)
