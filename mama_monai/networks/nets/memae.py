"""MemAE: memory-augmented autoencoder (Gong et al., ICCV 2019), the paper's main baseline."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch

from mama_monai.arguments import records_arguments
from mama_monai.networks.blocks.memae_memory import MemAEMemory
from mama_monai.networks.blocks.latent_queries import latent_to_queries, queries_to_latent
from mama_monai.networks.nets.autoencoder import ConvAutoEncoder
from mama_monai.networks.outputs import MemoryReadout

__all__ = ["MemAE"]


@records_arguments
class MemAE(ConvAutoEncoder):
    """:class:`ConvAutoEncoder` whose decoder sees only the memory's answer.

    Every latent position queries a :class:`~mama_monai.networks.blocks.memae_memory.MemAEMemory`
    (soft addressing by dot product, hard shrinkage) of ``num_slots`` items of ``channels[-1]``
    values, as in MemAE's reference code. Train with reconstruction MSE plus 0.0002 x the readout's entropy loss.

    Args:
        spatial_dims, in_channels, out_channels, channels, norm, act, check_finite: as
            :class:`ConvAutoEncoder`.
        num_slots: memory slots N. Defaults to 2000 (MemAE's setting).
        shrink_threshold: hard-shrinkage lambda; defaults to ``2.5 / num_slots``.
        similarity: ``"dot"`` (default, MemAE's code) or ``"cosine"`` (MemAE's paper text).

    Example::

        >>> net = MemAE(2, 1, channels=(8, 16), num_slots=20)
        >>> net.reconstruct(torch.rand(2, 1, 32, 32)).memory.weights.shape
        torch.Size([128, 20])
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: Optional[int] = None,
        channels: Sequence[int] = (32, 64, 128),
        num_slots: int = 2000,
        shrink_threshold: Optional[float] = None,
        similarity: str = "dot",
        norm: Union[Tuple, str] = "batch",
        act: Union[Tuple, str] = ("leakyrelu", {"negative_slope": 0.2}),
        check_finite: bool = True,
    ) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, channels, norm, act, check_finite)
        self.memory = MemAEMemory(num_slots, self.channels[-1], shrink_threshold, similarity)

    def address(self, z: torch.Tensor) -> Optional[MemoryReadout]:
        readout = self.memory(latent_to_queries(z, True))
        return MemoryReadout(queries_to_latent(readout.output, z, True), readout.indices, readout.weights, readout.loss)
