"""Named outputs of the networks' detailed passes.

``forward`` of every network returns the reconstruction tensor only (MONAI's ``verify_net_in_out``
and TorchScript export need a single tensor). The training step and the analysis tools call
``reconstruct`` instead, which returns a :class:`ModelOutput` with the latent code and, for memory
networks, a :class:`MemoryReadout`.
"""

from typing import NamedTuple, Optional

import torch

__all__ = ["MemoryReadout", "ModelOutput"]


class MemoryReadout(NamedTuple):
    """What a memory returns for a batch of queries.

    Attributes:
        output: the memory's answer, ``(Q, F)``.
        indices: the slot each query read most from, ``(Q,)`` (int64). Hard addressing reads
            exactly this slot.
        weights: addressing weights over all slots, ``(Q, N)``; each row sums to 1.
        loss: the memory's own training term (a scalar tensor; zero in eval mode). For the hash
            memory: codebook + commitment; for MemAE's memory: the entropy of the weights.
    """

    output: torch.Tensor
    indices: torch.Tensor
    weights: torch.Tensor
    loss: torch.Tensor


class ModelOutput(NamedTuple):
    """A network's detailed pass.

    Attributes:
        reconstruction: ``(B, C_out, *spatial)``, same spatial shape as the input.
        latent: the encoder's code z, ``(B, C_z, *spatial_z)``.
        memory: the memory readout, or ``None`` for networks without memory.
    """

    reconstruction: torch.Tensor
    latent: torch.Tensor
    memory: Optional[MemoryReadout]
