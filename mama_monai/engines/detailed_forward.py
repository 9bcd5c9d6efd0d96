"""A training-time wrapper whose ``forward`` returns the reconstruction and the memory term.

``DistributedDataParallel`` synchronises gradients only through the wrapped module's ``forward``;
the networks' ``forward`` returns the reconstruction alone (for export), so training wraps them in
:class:`DetailedForward`, whose ``forward`` calls ``reconstruct``.
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn as nn

__all__ = ["DetailedForward", "unwrap"]


class DetailedForward(nn.Module):
    """``forward(x) -> (reconstruction, memory_loss, memory_indices)``.

    For networks without memory (or without ``reconstruct``) the memory loss is 0 and the indices
    are empty.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not hasattr(self.network, "reconstruct"):
            return self.network(x), x.new_zeros(()), torch.zeros(0, dtype=torch.long, device=x.device)
        out = self.network.reconstruct(x)
        if out.memory is None:
            return out.reconstruction, x.new_zeros(()), torch.zeros(0, dtype=torch.long, device=x.device)
        return out.reconstruction, out.memory.loss, out.memory.indices


def unwrap(network: nn.Module) -> nn.Module:
    """The bare network inside ``DistributedDataParallel``, :class:`DetailedForward` and/or ``torch.compile``."""
    while True:
        if isinstance(network, nn.parallel.DistributedDataParallel):
            network = network.module
        elif isinstance(network, DetailedForward):
            network = network.network
        elif hasattr(network, "_orig_mod"):  # torch.compile's OptimizedModule
            network = network._orig_mod
        else:
            return network
