"""A plain convolutional autoencoder: the baseline MAMA Net is compared against."""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from monai.networks.blocks import ADN, Convolution

from mama_monai.arguments import records_arguments
from mama_monai.networks.blocks.resampling import TransposedConv
from mama_monai.networks.checks import check_image_batch, check_positive_int, check_spatial_dims, check_widths
from mama_monai.networks.outputs import MemoryReadout, ModelOutput

__all__ = ["ConvAutoEncoder"]


class _UpLevel(nn.Module):
    """Transposed convolution to an exact size, then norm and activation (unless ``conv_only``)."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, norm, act, conv_only: bool) -> None:
        super().__init__()
        self.conv = TransposedConv(spatial_dims, in_channels, out_channels)
        self.adn: nn.Module = (
            nn.Identity() if conv_only else ADN(ordering="NA", in_channels=out_channels, act=act, norm=norm, norm_dim=spatial_dims)
        )

    def forward(self, x: torch.Tensor, output_size: List[int]) -> torch.Tensor:
        return self.adn(self.conv(x, output_size))


@records_arguments
class ConvAutoEncoder(nn.Module):
    """Strided-convolution encoder, transposed-convolution decoder, no memory, no attention.

    Each encoder level is MONAI's :class:`~monai.networks.blocks.Convolution` (3x3, stride 2, norm,
    activation), so each size goes ``n -> ceil(n / 2)``; each decoder level restores the encoder's
    exact size, so any input whose sides are at least ``2 ** len(channels)`` comes back with its
    own shape. Subclasses add a memory by overriding :meth:`address` (see
    :class:`~mama_monai.networks.nets.memae.MemAE`).

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: output channels; defaults to ``in_channels``.
        channels: encoder widths, one level each. Defaults to ``(32, 64, 128)``.
        norm: MONAI norm. Defaults to ``"batch"``.
        act: MONAI activation. Defaults to LeakyReLU(0.2).
        check_finite: refuse NaN/inf inputs. Defaults to True.

    Example::

        >>> ae = ConvAutoEncoder(2, 1, channels=(8, 16))
        >>> ae(torch.rand(2, 1, 33, 30)).shape
        torch.Size([2, 1, 33, 30])
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: Optional[int] = None,
        channels: Sequence[int] = (32, 64, 128),
        norm: Union[Tuple, str] = "batch",
        act: Union[Tuple, str] = ("leakyrelu", {"negative_slope": 0.2}),
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims)
        check_positive_int("in_channels", in_channels)
        out_channels = in_channels if out_channels is None else out_channels
        check_positive_int("out_channels", out_channels)
        channels = check_widths("channels", channels)
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.channels = channels
        self.check_finite = check_finite
        self.min_size = 2 ** len(channels)
        widths = (in_channels,) + channels
        self.encoder = nn.ModuleList(
            [
                Convolution(spatial_dims, a, b, strides=2, kernel_size=3, act=act, norm=norm)
                for a, b in zip(widths[:-1], widths[1:])
            ]
        )
        outs = widths[::-1][1:-1] + (out_channels,)
        self.decoder = nn.ModuleList(
            [
                _UpLevel(spatial_dims, a, b, norm, act, conv_only=i == len(channels) - 1)
                for i, (a, b) in enumerate(zip(self._decoder_input_widths(), outs))
            ]
        )

    def _decoder_input_widths(self) -> Tuple[int, ...]:
        """Input width of each decoder level; a memory subclass may widen the first."""
        return tuple(reversed(self.channels))

    def encode(self, x: torch.Tensor) -> Tuple[torch.Tensor, List[List[int]]]:
        """Latent code and the size of every encoder grid, input first."""
        sizes: List[List[int]] = []
        h = x
        for level in self.encoder:
            sizes.append(list(h.shape[2:]))
            h = level(h)
        return h, sizes

    def address(self, z: torch.Tensor) -> Optional[MemoryReadout]:
        """No memory: ``None``. Memory subclasses return a readout shaped like ``z``."""
        return None

    def decode(self, h: torch.Tensor, sizes: List[List[int]]) -> torch.Tensor:
        n = len(sizes)
        for i, level in enumerate(self.decoder):
            h = level(h, sizes[n - 1 - i])
        return h

    def reconstruct(self, x: torch.Tensor) -> ModelOutput:
        check_image_batch(x, self.spatial_dims, self.in_channels, self.min_size, None, self.check_finite)
        z, sizes = self.encode(x)
        readout = self.address(z)
        h = z if readout is None else readout.output
        return ModelOutput(self.decode(h, sizes), z, readout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reconstruct(x).reconstruction
