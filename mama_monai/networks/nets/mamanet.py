"""MAMA Net: Multi-Scale Attention Memory Autoencoder (Chen et al., IEEE TMI 40(3), 2021)."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from mama_monai.arguments import records_arguments
from mama_monai.networks.blocks.hash_memory import HashMemory
from mama_monai.networks.blocks.latent_queries import latent_to_queries, queries_to_latent
from mama_monai.networks.blocks.multiscale_attention import MultiScaleAttentionBlock
from mama_monai.networks.checks import (
    check_choice,
    check_image_batch,
    check_positive_int,
    check_spatial_dims,
    check_widths,
)
from mama_monai.networks.outputs import MemoryReadout, ModelOutput

__all__ = ["MAMANet", "MEMORY_MODES"]

#: ``"global"``: one memory item is the whole flattened latent code (the paper, F = C*H*W);
#: ``"local"``: one item per latent position, F = C (as MemAE does), any input size.
MEMORY_MODES = ("global", "local")


@records_arguments
class MAMANet(nn.Module):
    """Multi-scale attention encoder, hash memory, multi-scale attention decoder.

    Encoder: ``len(channels)`` DA blocks (each halves the grid, rounding up: 228 -> 114 -> 57 -> 29)
    then an SA block, giving the latent code ``z``, the paper's *semantic basis*. The memory answers
    ``z`` with stored normal patterns; the decoder reconstructs from ``concat(memory(z), z)`` (or
    from ``memory(z)`` alone with ``use_semantic_basis=False``; the skip path lets anomalies leak
    through, paper Fig. 10; measured on the compact configuration, its decoder leans on ``z``: the
    memory's answer for another slice raises the held-out normal error by 13-28 %, ``z`` removed
    by 10-19x, ``docs/accuracy/memory_use.md``): SA, then UA blocks that restore exactly the
    encoder's sizes, with an SA after each intermediate UA but the last, and a UA to
    ``out_channels`` without norm or activation. With ``channels=(64, 256, 512)`` and
    ``decoder_channels=(512, 64)`` this is the paper's Fig. 2:
    29x29x1024 -> SA -> UA 57x57x512 -> SA -> UA 114x114x64 -> UA 228x228xC.

    Memory modes (``memory_mode``):

    - ``"global"`` (the paper): one slot is a whole flattened ``z`` (F = 29*29*512 = 430,592 at
      228x228), so ``img_size`` is fixed and required; the paper's N = 2000 gives 861 M memory
      parameters (GPU only).
    - ``"local"`` (compact): one slot per latent position, F = ``channels[-1]``, as MemAE does;
      any input size whose every side is at least ``2 ** len(channels)``.

    ``forward`` returns the reconstruction only; :meth:`reconstruct` returns a
    :class:`~mama_monai.networks.outputs.ModelOutput` with ``z`` and the memory readout (slot
    indices, addressing weights, memory loss).

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: output channels; defaults to ``in_channels``.
        img_size: input spatial size, required for ``memory_mode="global"``.
        channels: encoder widths, one DA block each. Defaults to ``(64, 256, 512)``.
        decoder_channels: widths of the decoder's UA blocks but the last
            (``len(channels) - 1`` values); defaults to ``channels[:-1]`` reversed.
        memory_mode: ``"global"`` or ``"local"``. Defaults to ``"global"``.
        num_slots: memory slots N. Defaults to 2000.
        use_semantic_basis: concatenate ``z`` to the memory output. Defaults to True.
        semantic_dropout: in training, the probability that a sample's ``z`` is replaced by zeros
            in the decoder's input, so that the decoder also learns to reconstruct from the
            memory's answer alone (ours, not the paper's; measured in
            ``docs/accuracy/memory_dropout.md``). Needs ``use_semantic_basis``; 0 <= p < 1.
            Defaults to 0 (never).
        memory_args: further :class:`~mama_monai.networks.blocks.hash_memory.HashMemory`
            arguments (``hash_bits``, ``addressing``, ``top_k``, ``temperature``,
            ``commitment_weight``).
        block_args: further :class:`~mama_monai.networks.blocks.multiscale_attention.MultiScaleAttentionBlock`
            arguments for every block (``patch_size``, ``patch_attention``, ``head_dim``,
            ``residual``, ``context_size``, ``norm``, ``act``).
        outer_attention: False builds the two blocks on the input grid (the first DA and the
            output UA) without attention (plain convolution, norm, activation). Their pixel patch
            attention is the most expensive stage on a CPU (a 3x3 neighbourhood at full
            resolution) while it sees only 1 and ``decoder_channels[-1]`` channels; the compact
            configuration turns it off (our decision, measured in ``docs/accuracy.md``). Defaults
            to True (the paper: attention in every block).
        check_finite: refuse inputs with NaN/inf (one reduction per call). Defaults to True.

    Example::

        >>> net = MAMANet(2, 1, channels=(8, 16), memory_mode="local", num_slots=32,
        ...               block_args={"head_dim": 8})
        >>> net(torch.rand(2, 1, 37, 41)).shape
        torch.Size([2, 1, 37, 41])
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: Optional[int] = None,
        img_size: Optional[Sequence[int]] = None,
        channels: Sequence[int] = (64, 256, 512),
        decoder_channels: Optional[Sequence[int]] = None,
        memory_mode: str = "global",
        num_slots: int = 2000,
        use_semantic_basis: bool = True,
        semantic_dropout: float = 0.0,
        memory_args: Optional[Dict[str, Any]] = None,
        block_args: Optional[Dict[str, Any]] = None,
        outer_attention: bool = True,
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims)
        check_positive_int("in_channels", in_channels)
        out_channels = in_channels if out_channels is None else out_channels
        check_positive_int("out_channels", out_channels)
        channels = check_widths("channels", channels)
        decoder_channels = self._check_decoder_channels(channels, decoder_channels)
        check_choice("memory_mode", memory_mode, MEMORY_MODES)
        check_positive_int("num_slots", num_slots)

        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.channels = channels
        self.memory_mode = memory_mode
        self.use_semantic_basis = use_semantic_basis
        self.semantic_dropout = self._check_semantic_dropout(semantic_dropout, use_semantic_basis)
        self.check_finite = check_finite
        self.min_size = 2 ** len(channels)
        self.img_size: Optional[List[int]] = self._check_img_size(img_size, spatial_dims, memory_mode)
        self.latent_size: List[int] = self._latent_size(self.img_size) if self.img_size is not None else []
        self.block_args = dict(block_args or {})

        self.outer_attention = bool(outer_attention)
        self.encoder = nn.ModuleList(
            [
                self._block(c_in, c_out, "down", attention=self.outer_attention or i > 0)
                for i, (c_in, c_out) in enumerate(zip((in_channels,) + channels[:-1], channels))
            ]
        )
        self.semantic = self._block(channels[-1], channels[-1], "same")
        feature_dim = channels[-1] * math.prod(self.latent_size) if memory_mode == "global" else channels[-1]
        self.memory = self._get_memory(num_slots, feature_dim, dict(memory_args or {}))

        d_in = 2 * channels[-1] if use_semantic_basis else channels[-1]
        self.bottleneck = self._block(d_in, d_in, "same")
        widths = (d_in,) + decoder_channels
        self.decoder_up = nn.ModuleList([self._block(a, b, "up") for a, b in zip(widths[:-1], widths[1:])])
        self.decoder_same = nn.ModuleList(
            [self._block(c, c, "same") if i < len(decoder_channels) - 1 else nn.Identity() for i, c in enumerate(decoder_channels)]
        )
        self.output_block = self._block(widths[-1], out_channels, "up", conv_only=True, attention=self.outer_attention)

    # ------------------------------------------------------------------ builders (overridable)
    def _block(self, in_channels: int, out_channels: int, role: str, conv_only: bool = False, attention: bool = True) -> nn.Module:
        args = dict(self.block_args)
        args["attention"] = bool(args.get("attention", True)) and attention
        return MultiScaleAttentionBlock(self.spatial_dims, in_channels, out_channels, role=role, conv_only=conv_only, **args)

    def _get_memory(self, num_slots: int, feature_dim: int, memory_args: Dict[str, Any]) -> nn.Module:
        return HashMemory(num_slots, feature_dim, **memory_args)

    # ------------------------------------------------------------------ size bookkeeping
    @staticmethod
    def _check_decoder_channels(channels: Tuple[int, ...], decoder_channels: Optional[Sequence[int]]) -> Tuple[int, ...]:
        """``decoder_channels`` (default ``channels[:-1]`` reversed), ``len(channels) - 1`` positive widths."""
        widths = tuple(reversed(channels[:-1])) if decoder_channels is None else tuple(decoder_channels)
        if len(widths) != len(channels) - 1:
            raise ValueError(f"decoder_channels must have len(channels) - 1 = {len(channels) - 1} values, got {widths!r}.")
        return check_widths("decoder_channels", widths, minimum_count=0)

    @staticmethod
    def _check_semantic_dropout(p: float, use_semantic_basis: bool) -> float:
        """``p`` as a float in [0, 1), and 0 where there is no semantic basis to drop."""
        if not 0.0 <= float(p) < 1.0 or (p and not use_semantic_basis):
            raise ValueError(f"semantic_dropout must be >= 0 and < 1, and 0 without use_semantic_basis, got {p!r} (use_semantic_basis={use_semantic_basis!r}).")
        return float(p)

    def _check_img_size(self, img_size, spatial_dims: int, memory_mode: str) -> Optional[List[int]]:
        if img_size is None:
            if memory_mode == "global":
                raise ValueError("img_size is required with memory_mode='global' (a slot holds a whole latent code), got None.")
            return None
        size = [int(s) for s in img_size] if isinstance(img_size, (list, tuple)) else [int(img_size)] * spatial_dims
        if len(size) != spatial_dims or any(s < self.min_size for s in size):
            raise ValueError(
                f"img_size must give {spatial_dims} sizes, each >= {self.min_size} "
                f"(2 ** len(channels)), got {img_size!r}."
            )
        return size

    def _latent_size(self, size: List[int]) -> List[int]:
        for _ in self.channels:
            size = [(s + 1) // 2 for s in size]
        return size

    # ------------------------------------------------------------------ passes
    def encode(self, x: torch.Tensor) -> Tuple[torch.Tensor, List[List[int]]]:
        """Latent code ``z`` ``(B, channels[-1], *latent)`` and the sizes of every encoder grid, input first."""
        sizes: List[List[int]] = []
        h = x
        for block in self.encoder:
            sizes.append(list(h.shape[2:]))
            h = block(h)
        return self.semantic(h), sizes

    def address(self, z: torch.Tensor) -> MemoryReadout:
        """Read the memory for ``z``; the readout's ``output`` has ``z``'s shape."""
        local = self.memory_mode == "local"
        readout = self.memory(latent_to_queries(z, local))
        return MemoryReadout(queries_to_latent(readout.output, z, local), readout.indices, readout.weights, readout.loss)

    def decode(self, memory_output: torch.Tensor, z: torch.Tensor, sizes: List[List[int]]) -> torch.Tensor:
        """Reconstruction from the memory's answer and ``z`` on the encoder's ``sizes``."""
        if self.training and self.semantic_dropout > 0:  # per sample: the decoder sees [m, 0]
            z = z * (torch.rand((z.shape[0],) + (1,) * (z.dim() - 1), device=z.device) >= self.semantic_dropout).to(z.dtype)
        h = torch.cat([memory_output.to(z.dtype), z], dim=1) if self.use_semantic_basis else memory_output
        h = self.bottleneck(h)
        n = len(sizes)
        for i, (up, same) in enumerate(zip(self.decoder_up, self.decoder_same)):
            h = same(up(h, sizes[n - 1 - i]))
        return self.output_block(h, sizes[0])

    def reconstruct(self, x: torch.Tensor) -> ModelOutput:
        """The full pass: reconstruction, ``z`` and the memory readout."""
        check_image_batch(x, self.spatial_dims, self.in_channels, self.min_size, self.img_size, self.check_finite)
        z, sizes = self.encode(x)
        readout = self.address(z)
        return ModelOutput(self.decode(readout.output, z, sizes), z, readout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reconstruct(x).reconstruction
