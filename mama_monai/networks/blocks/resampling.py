"""The convolution ``G`` of a multi-scale attention block, per role.

Two small modules with the same call signature ``(x, output_size)`` so that TorchScript can compile
a block whatever its role: a (strided) convolution ignores ``output_size``; a transposed
convolution uses it to restore the encoder's exact size (e.g. 29 -> 57 and 57 -> 114, which no
fixed ``output_padding`` gives both).
"""

from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn as nn
from monai.networks.layers import Conv

__all__ = ["StridedConv", "TransposedConv"]


class StridedConv(nn.Module):
    """``kernel_size`` 3, padding 1, stride 1 (SA) or 2 (DA); output size ``ceil(n / stride)``."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv = Conv[Conv.CONV, spatial_dims](in_channels, out_channels, kernel_size=3, stride=stride, padding=1)

    def forward(self, x: torch.Tensor, output_size: Optional[List[int]] = None) -> torch.Tensor:
        return self.conv(x)


class TransposedConv(nn.Module):
    """``kernel_size`` 3, stride 2, padding 1 transposed convolution (UA).

    Without ``output_size`` it doubles each size (``output_padding`` 1); with it, it produces
    ``output_size`` exactly, which must be ``2n - 1`` or ``2n`` for an input size ``n``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = Conv[Conv.CONVTRANS, spatial_dims](in_channels, out_channels, kernel_size=3, stride=2, padding=1)

    def forward(self, x: torch.Tensor, output_size: Optional[List[int]] = None) -> torch.Tensor:
        if output_size is None:
            output_size = [2 * s for s in x.shape[2:]]
        return self.conv(x, output_size=output_size)
