"""The multi-scale attention block of MAMA Net (Sec. III-B, Fig. 3) in its SA, DA and UA roles."""

from __future__ import annotations

from typing import List, Optional, Tuple, Union

import torch
import torch.nn as nn
from monai.networks.layers.utils import get_act_layer, get_norm_layer

from mama_monai.networks.blocks.cross_attention import GlobalCrossAttention
from mama_monai.networks.blocks.patch_attention import PixelPatchAttention
from mama_monai.networks.blocks.resampling import StridedConv, TransposedConv
from mama_monai.networks.checks import check_choice, check_positive_int, check_spatial_dims

__all__ = ["MultiScaleAttentionBlock", "ROLES"]


class _NoCrossAttention(nn.Module):
    """Stands in for :class:`GlobalCrossAttention` in a block without attention: returns the query."""

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return query

#: role name -> what ``G`` does to the grid
ROLES = ("same", "down", "up")


class MultiScaleAttentionBlock(nn.Module):
    """Pixel patch attention, the block's convolution ``G``, then global cross-attention.

    1. ``P = PixelPatchAttention(x)`` on the input grid (paper Eq. 1-2).
    2. ``Q = G(P)``: a 3x3 convolution, stride 1 (``role="same"``, the paper's SA), stride 2
       (``"down"``, DA: each size ``n -> ceil(n / 2)``) or a 3x3 stride-2 transposed convolution
       (``"up"``, UA: ``n -> 2n``, or exactly ``output_size`` when given).
    3. ``GlobalCrossAttention(Q, P)``: every output position attends over every input position
       (the paper's "channel attention", Eq. 3-4).
    4. Normalisation and activation (MONAI factories), unless ``conv_only`` (the output layer).

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: output channels (paper's C'').
        role: ``"same"``, ``"down"`` or ``"up"``. Defaults to ``"same"``.
        patch_size: neighbourhood width of the pixel patch attention. Defaults to 3.
        patch_attention: ``"softmax"`` or ``"scaled"`` (the paper's literal form). Defaults to
            ``"softmax"``.
        attn_channels: width of the global attention; defaults to
            :func:`~mama_monai.networks.blocks.cross_attention.default_attn_channels`.
        head_dim: width of one attention head; defaults to ``min(64, attn_channels)``.
        residual: residual (zero-initialised) form of both attentions, see their classes; False is
            the paper's literal reading. Defaults to True.
        context_size: pool the global attention's keys/values to at most this many positions per
            side (see :class:`GlobalCrossAttention`); ``None`` (default) is the paper's full attention.
        norm: MONAI norm name or ``(name, kwargs)``. Defaults to ``"batch"``.
        act: MONAI activation name or ``(name, kwargs)``. Defaults to LeakyReLU(0.2).
        conv_only: skip norm and activation (for the output layer). Defaults to False.
        attention: False drops both attention stages, leaving ``G``, norm and activation: the
            plain-convolution ablation (paper Table IV's "without attention"), and the cheap
            full-resolution blocks of the compact configuration. Defaults to True.

    Shapes:
        ``(B, in_channels, *spatial)`` -> ``(B, out_channels, *spatial')`` with ``spatial'`` the
        same, halved (rounded up) or doubled / ``output_size`` according to ``role``.

    Example::

        >>> down = MultiScaleAttentionBlock(2, 1, 16, role="down")
        >>> down(torch.rand(2, 1, 57, 57)).shape
        torch.Size([2, 16, 29, 29])
        >>> up = MultiScaleAttentionBlock(2, 16, 8, role="up")
        >>> up(torch.rand(2, 16, 29, 29), output_size=[57, 57]).shape
        torch.Size([2, 8, 57, 57])
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        role: str = "same",
        patch_size: int = 3,
        patch_attention: str = "softmax",
        attn_channels: Optional[int] = None,
        head_dim: Optional[int] = None,
        residual: bool = True,
        context_size: Optional[int] = None,
        norm: Union[Tuple, str] = "batch",
        act: Union[Tuple, str] = ("leakyrelu", {"negative_slope": 0.2}),
        conv_only: bool = False,
        attention: bool = True,
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims)
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_choice("role", role, ROLES)
        if attention:
            self.patch: nn.Module = PixelPatchAttention(
                spatial_dims, in_channels, patch_size=patch_size, normalization=patch_attention, residual=residual
            )
            grid_in = self.patch.out_channels
        else:
            self.patch, grid_in = nn.Identity(), in_channels
        if role == "up":
            self.resample: nn.Module = TransposedConv(spatial_dims, grid_in, out_channels)
        else:
            self.resample = StridedConv(spatial_dims, grid_in, out_channels, stride=2 if role == "down" else 1)
        self.attention: nn.Module = (
            GlobalCrossAttention(
                spatial_dims, out_channels, grid_in, attn_channels=attn_channels, head_dim=head_dim, residual=residual,
                context_size=context_size,
            )
            if attention
            else _NoCrossAttention()
        )
        if conv_only:
            self.norm: nn.Module = nn.Identity()
            self.act: nn.Module = nn.Identity()
        else:
            self.norm = get_norm_layer(norm, spatial_dims=spatial_dims, channels=out_channels)
            self.act = get_act_layer(act)
        self.role = role

    def forward(self, x: torch.Tensor, output_size: Optional[List[int]] = None) -> torch.Tensor:
        p = self.patch(x)
        q = self.resample(p, output_size)
        return self.act(self.norm(self.attention(q, p)))
