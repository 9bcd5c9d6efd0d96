"""Building blocks of MAMA Net: attention, resampling convolutions and memories."""

from mama_monai.networks.blocks.memae_memory import MemAEMemory
from mama_monai.networks.blocks.cross_attention import GlobalCrossAttention, default_attn_channels
from mama_monai.networks.blocks.hash_memory import HashMemory
from mama_monai.networks.blocks.multiscale_attention import MultiScaleAttentionBlock
from mama_monai.networks.blocks.patch_attention import PixelPatchAttention
from mama_monai.networks.blocks.resampling import StridedConv, TransposedConv

__all__ = [
    "MemAEMemory",
    "GlobalCrossAttention",
    "HashMemory",
    "MultiScaleAttentionBlock",
    "PixelPatchAttention",
    "StridedConv",
    "TransposedConv",
    "default_attn_channels",
]
