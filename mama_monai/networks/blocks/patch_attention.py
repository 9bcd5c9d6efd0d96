"""Pixel patch attention (MAMA Net, Sec. III-B, Eq. 1-2)."""

from __future__ import annotations

import itertools
import math
from typing import List, Optional

import torch
import torch.nn as nn
from monai.networks.layers import Conv

from mama_monai.networks.checks import check_choice, check_positive_int, check_spatial_dims

__all__ = ["PixelPatchAttention"]


class PixelPatchAttention(nn.Module):
    """Each position attends over the ``patch_size``-wide neighbourhood around it.

    ``P_Q``, ``P_K``, ``P_V`` are 1x1 convolutions to ``attn_channels``; the query at each position
    is dotted with the keys of its ``patch_size**spatial_dims`` neighbours (zero padding at the
    border) and the weights combine the neighbours' values. Computed with one shifted product per
    neighbour (no unfold, no ``(positions x patch)`` copy of the keys), in 2D and 3D alike: one
    convolution projects q|k|v (the three 1x1 weights stacked; the parameters stay three modules),
    k|v are padded once, the border mask is arithmetic on positions, and the values are
    accumulated with ``addcmul``. Under ``torch.compile`` the loop over neighbours fuses into a
    few kernels; the layout (channels-first or channels-last) is kept.

    Two normalisations of the weights (``normalization``):

    - ``"softmax"`` (default): ``softmax(q.k / sqrt(attn_channels))`` over the neighbours, with
      out-of-image neighbours masked out. Chosen as the default because the weights stay bounded
      whatever the feature scale, which keeps training with Adam stable.
    - ``"scaled"``: the paper's literal Eq. 1, ``q.k / patch_size**2``, with no softmax. The weights
      are unbounded: usable, but it needs a smaller learning rate.

    With ``residual=True`` (default) the block returns ``x + gamma * W_o(attention)`` where ``W_o`` is
    a 1x1 convolution back to ``in_channels`` and ``gamma`` a learnable scalar initialised to 0, so
    the block starts as the identity (as in SAGAN). ``residual=False`` is the paper's literal
    reading: the attention output itself, with ``attn_channels`` channels.

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels of the input.
        attn_channels: width of queries, keys and values (paper's C'). Defaults to ``in_channels``.
        patch_size: odd neighbourhood width (paper's patch_s). Defaults to 3.
        normalization: ``"softmax"`` or ``"scaled"``. Defaults to ``"softmax"``.
        residual: add the attention to the input as above. Defaults to True.

    Shapes:
        input ``(B, in_channels, *spatial)``; output ``(B, out_channels, *spatial)`` where
        ``out_channels`` is ``in_channels`` if ``residual`` else ``attn_channels``.

    Example::

        >>> block = PixelPatchAttention(2, in_channels=16, patch_size=3)
        >>> block(torch.rand(2, 16, 32, 32)).shape
        torch.Size([2, 16, 32, 32])
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        attn_channels: Optional[int] = None,
        patch_size: int = 3,
        normalization: str = "softmax",
        residual: bool = True,
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims)
        check_positive_int("in_channels", in_channels)
        attn_channels = in_channels if attn_channels is None else attn_channels
        check_positive_int("attn_channels", attn_channels)
        check_positive_int("patch_size", patch_size)
        if patch_size % 2 != 1:
            raise ValueError(f"patch_size must be odd so the patch is centred on its pixel, got {patch_size}.")
        check_choice("normalization", normalization, ("softmax", "scaled"))

        conv = Conv[Conv.CONV, spatial_dims]
        self.spatial_dims = spatial_dims
        self.patch_size = patch_size
        self.use_softmax = normalization == "softmax"
        self.residual = residual
        self.scale = 1.0 / math.sqrt(attn_channels) if self.use_softmax else 1.0 / patch_size**2
        self.out_channels = in_channels if residual else attn_channels
        self.query = conv(in_channels, attn_channels, kernel_size=1)
        self.key = conv(in_channels, attn_channels, kernel_size=1)
        self.value = conv(in_channels, attn_channels, kernel_size=1)
        self.out_proj = conv(attn_channels, in_channels, kernel_size=1) if residual else nn.Identity()
        self.gamma = nn.Parameter(torch.zeros(1)) if residual else nn.Parameter(torch.ones(1), requires_grad=False)
        self.offsets: List[List[int]] = [list(o) for o in itertools.product(range(patch_size), repeat=spatial_dims)]
        # neighbour offsets relative to the centre, (patch_size**spatial_dims, spatial_dims); a
        # non-persistent buffer so the border mask is built on the input's device without a copy
        self.register_buffer(
            "relative_offsets", torch.tensor(self.offsets, dtype=torch.long) - patch_size // 2, persistent=False
        )

    def _shifted(self, padded: torch.Tensor, offset: List[int], size: List[int]) -> torch.Tensor:
        out = padded
        for d in range(self.spatial_dims):
            out = out.narrow(2 + d, offset[d], size[d])
        return out

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        """``concat(P_Q x, P_K x, P_V x)`` as one convolution (the three weights stacked)."""
        bq, bk, bv = self.query.bias, self.key.bias, self.value.bias
        assert bq is not None and bk is not None and bv is not None  # built with bias=True (TorchScript refinement)
        weight = torch.cat([self.query.weight, self.key.weight, self.value.weight], dim=0)
        bias = torch.cat([bq, bk, bv], dim=0)
        if self.spatial_dims == 2:
            return nn.functional.conv2d(x, weight, bias)
        return nn.functional.conv3d(x, weight, bias)

    def _in_image(self, size: List[int]) -> torch.Tensor:
        """``(1, patch_size**spatial_dims, *size)`` bool: is the neighbour at each offset inside the image."""
        n = len(self.offsets)
        device = self.relative_offsets.device
        valid = torch.ones([n] + [1] * self.spatial_dims, dtype=torch.bool, device=device)
        for d in range(self.spatial_dims):
            view = [1] * (1 + self.spatial_dims)
            view[1 + d] = size[d]
            neighbour = torch.arange(size[d], device=device).view(view) + self.relative_offsets[:, d].view(
                [n] + [1] * self.spatial_dims
            )
            valid = valid & (neighbour >= 0) & (neighbour < size[d])
        return valid.unsqueeze(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = list(x.shape[2:])
        pad = self.patch_size // 2
        a = self.query.out_channels
        # one projection for q|k|v, one zero padding for k|v
        qkv = self._project(x)
        q = qkv.narrow(1, 0, a)
        kv = nn.functional.pad(qkv.narrow(1, a, 2 * a), [pad] * (2 * self.spatial_dims))
        k = kv.narrow(1, 0, a)
        v = kv.narrow(1, a, a)
        logits = torch.stack([(q * self._shifted(k, o, size)).sum(1) for o in self.offsets], dim=1) * self.scale
        if self.use_softmax:
            weights = torch.softmax(logits.masked_fill(~self._in_image(size), float("-inf")), dim=1)
        else:
            weights = logits  # zero padding: out-of-image neighbours add nothing
        out = weights[:, :1] * self._shifted(v, self.offsets[0], size)
        for i in range(1, len(self.offsets)):
            out = torch.addcmul(out, weights[:, i : i + 1], self._shifted(v, self.offsets[i], size))
        if self.residual:
            return x + self.gamma * self.out_proj(out)
        return out
