"""MONAI-style networks of mama-monai.

Every block and net takes ``spatial_dims`` first (2 or 3) and gets its layers from MONAI's
factories. ``forward`` returns the reconstruction tensor only; ``reconstruct`` returns a
:class:`ModelOutput` with the latent code and the memory readout. This package imports nothing
from data, engines or I/O.
"""

from mama_monai.networks.blocks import (
    MemAEMemory,
    GlobalCrossAttention,
    HashMemory,
    MultiScaleAttentionBlock,
    PixelPatchAttention,
)
from mama_monai.networks.nets import MEMORY_MODES, ConvAutoEncoder, MAMANet, MemAE, ReconstructionEnsemble
from mama_monai.networks.outputs import MemoryReadout, ModelOutput

__all__ = [
    "ConvAutoEncoder",
    "MemAEMemory",
    "GlobalCrossAttention",
    "HashMemory",
    "MAMANet",
    "MEMORY_MODES",
    "MemAE",
    "MemoryReadout",
    "ModelOutput",
    "MultiScaleAttentionBlock",
    "PixelPatchAttention",
    "ReconstructionEnsemble",
]
