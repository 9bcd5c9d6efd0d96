"""Global spatial cross-attention: MAMA Net's "channel attention" (Sec. III-B, Eq. 3-4)."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
from monai.networks.layers import Conv

from mama_monai.networks.checks import check_positive_int, check_spatial_dims

__all__ = ["GlobalCrossAttention", "default_attn_channels"]


def default_attn_channels(out_channels: int, in_channels: int) -> int:
    """Attention width for a block: ``out_channels`` when it is a multiple of 8, else ``in_channels``
    when that is, else ``out_channels`` rounded up to a multiple of 8.

    Fused attention kernels want head dimensions that are multiples of 8, so a block whose output is
    tiny (the output layer, 1 or 3 channels) attends at its input width and projects back.
    """
    if out_channels % 8 == 0:
        return out_channels
    if in_channels % 8 == 0:
        return in_channels
    return 8 * ((out_channels + 7) // 8)


class GlobalCrossAttention(nn.Module):
    """Every position of an output grid attends over every position of an input grid.

    The paper calls this stage "channel attention" (Eq. 3-4): ``C_Q = G(Output_P)`` lives on the
    block's output grid, ``C_K`` and ``C_V`` are 1x1 convolutions of ``Output_P`` on the input grid,
    and ``Output = C_V x Softmax(C_K^T C_Q)``. As written this is a global *spatial* cross-attention,
    and it is named for what it computes.

    The ``(output positions x input positions)`` matrix is never materialised: the product runs in
    :func:`torch.nn.functional.scaled_dot_product_attention`, which uses the fused flash /
    memory-efficient kernels on GPU. Queries, keys and values are projected to ``attn_channels``
    split into heads of ``head_dim`` (multiples of 8 for the fused kernels); the result is projected
    back to ``query_channels``.

    With ``residual=True`` (default) the module returns ``query + gamma * attention`` with a learnable
    ``gamma`` initialised to 0, so the block starts as its plain convolution ``G``. With
    ``residual=False`` it returns the attention alone, the paper's literal Eq. 4.

    ``context_size`` (default ``None``, the paper's full attention) average-pools the keys and
    values to at most ``context_size`` positions per side before attending: every output position
    still sees the whole image, at a coarser context resolution, and the cost drops from
    ``N_out x N_in`` to ``N_out x context_size ** spatial_dims``. The compact CPU configuration uses
    it; the paper configuration does not.

    Args:
        spatial_dims: 2 or 3.
        query_channels: channels of the query feature map (the output of ``G``, paper's C'').
        context_channels: channels of the context feature map (``Output_P``).
        attn_channels: attention width; defaults to :func:`default_attn_channels`.
        head_dim: width of one head; defaults to ``min(64, attn_channels)``.
        residual: see above. Defaults to True.
        context_size: pool keys and values to at most this many positions per side; ``None``
            (default) attends over every input position.

    Shapes:
        query ``(B, query_channels, *out_spatial)``, context ``(B, context_channels, *in_spatial)``
        -> ``(B, query_channels, *out_spatial)``.

    Example::

        >>> att = GlobalCrossAttention(2, query_channels=32, context_channels=16)
        >>> att(torch.rand(2, 32, 8, 8), torch.rand(2, 16, 16, 16)).shape
        torch.Size([2, 32, 8, 8])
    """

    def __init__(
        self,
        spatial_dims: int,
        query_channels: int,
        context_channels: int,
        attn_channels: Optional[int] = None,
        head_dim: Optional[int] = None,
        residual: bool = True,
        context_size: Optional[int] = None,
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims)
        check_positive_int("query_channels", query_channels)
        if context_size is not None:
            check_positive_int("context_size", context_size)
        check_positive_int("context_channels", context_channels)
        if attn_channels is None:
            attn_channels = default_attn_channels(query_channels, context_channels)
        check_positive_int("attn_channels", attn_channels)
        head_dim = min(64, attn_channels) if head_dim is None else head_dim
        check_positive_int("head_dim", head_dim)
        if attn_channels % head_dim != 0:
            raise ValueError(f"attn_channels ({attn_channels}) must be a multiple of head_dim, got head_dim={head_dim}.")
        conv = Conv[Conv.CONV, spatial_dims]
        self.spatial_dims = spatial_dims
        self.context_size = context_size
        self.num_heads = attn_channels // head_dim
        self.head_dim = head_dim
        self.residual = residual
        self.to_q = conv(query_channels, attn_channels, kernel_size=1)
        self.to_k = conv(context_channels, attn_channels, kernel_size=1)
        self.to_v = conv(context_channels, attn_channels, kernel_size=1)
        self.out_proj = conv(attn_channels, query_channels, kernel_size=1)
        self.gamma = nn.Parameter(torch.zeros(1)) if residual else nn.Parameter(torch.ones(1), requires_grad=False)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        # (B, A, *spatial) -> (B, heads, positions, head_dim) with a unit stride on head_dim: the
        # fused (flash / memory-efficient) kernels need it, else SDPA falls back to the math kernel
        # that materialises the (positions x positions) matrix. A channels-last input is already
        # laid out (B, *spatial, A), so this is a view; a channels-first one is copied once.
        b = t.shape[0]
        heads = t.movedim(1, -1).reshape(b, -1, self.num_heads, self.head_dim)
        if heads.stride(-1) != 1:  # channels-first: reshape could return a view strided on head_dim
            heads = heads.contiguous()
        return heads.transpose(1, 2)

    def _from_heads(self, attn: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        # (B, heads, positions, head_dim) -> (B, A, *spatial) in ``like``'s memory layout: a view
        # of SDPA's (B, positions, heads, head_dim) output for channels-last, one copy otherwise.
        b = like.shape[0]
        out = attn.transpose(1, 2).reshape([b] + list(like.shape[2:]) + [self.num_heads * self.head_dim]).movedim(-1, 1)
        return out.contiguous() if like.is_contiguous() else out

    def _pool_context(self, context: torch.Tensor) -> torch.Tensor:
        cs = self.context_size
        if cs is None:
            return context
        sizes = [min(s, cs) for s in context.shape[2:]]
        if sizes == list(context.shape[2:]):
            return context
        if self.spatial_dims == 2:
            return nn.functional.adaptive_avg_pool2d(context, sizes)
        return nn.functional.adaptive_avg_pool3d(context, sizes)

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        context = self._pool_context(context)
        q = self._heads(self.to_q(query))
        k = self._heads(self.to_k(context))
        v = self._heads(self.to_v(context))
        attn = nn.functional.scaled_dot_product_attention(q, k, v)
        out = self.out_proj(self._from_heads(attn, query))
        if self.residual:
            return query + self.gamma * out
        return out
