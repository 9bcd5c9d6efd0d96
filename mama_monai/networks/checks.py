"""Argument and input checks shared by the networks.

Every message names the parameter, echoes the value received and says what was expected, so a
bad configuration fails in ``__init__`` and a bad tensor fails before any computation.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import torch

__all__ = ["check_choice", "check_positive_int", "check_spatial_dims", "check_widths", "check_image_batch"]


def check_choice(name: str, value, allowed: Sequence) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}.")


def check_positive_int(name: str, value, minimum: int = 1) -> None:
    """Raise ``ValueError`` unless ``value`` is an int ``>= minimum`` (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def check_widths(name: str, values, minimum_count: int = 1) -> tuple:
    """Channel widths as a tuple; ``ValueError`` unless there are ``>= minimum_count`` positive ints."""
    widths = tuple(values)
    if len(widths) < minimum_count:
        raise ValueError(f"{name} must list at least {minimum_count} width(s), got {values!r}.")
    for c in widths:
        check_positive_int(name, c)
    return widths


def check_spatial_dims(spatial_dims) -> None:
    """Raise ``ValueError`` unless ``spatial_dims`` is 2 or 3."""
    if isinstance(spatial_dims, bool) or spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}.")


def check_image_batch(
    x: torch.Tensor,
    spatial_dims: int,
    in_channels: int,
    min_size: int,
    fixed_size: Optional[List[int]],
    check_finite: bool,
) -> None:
    """Check a network input ``(B, C, *spatial)`` before any computation.

    Args:
        x: the input batch.
        spatial_dims: expected number of spatial dimensions.
        in_channels: expected channel count.
        min_size: smallest allowed size of each spatial dimension.
        fixed_size: if given, the only allowed spatial shape (e.g. a memory over the whole
            flattened latent code fixes the input size).
        check_finite: also refuse NaN or infinite values (one reduction over the input).
    """
    if x.dim() != spatial_dims + 2:
        raise ValueError(
            f"input must have shape (B, C, {'H, W' if spatial_dims == 2 else 'H, W, D'}) "
            f"({spatial_dims + 2} dims), got shape {list(x.shape)}."
        )
    if x.shape[1] != in_channels:
        raise ValueError(f"input must have {in_channels} channel(s) (in_channels), got {x.shape[1]} in shape {list(x.shape)}.")
    spatial = list(x.shape[2:])
    if fixed_size is not None:
        if spatial != fixed_size:
            raise ValueError(
                f"input spatial shape must be img_size={fixed_size} for this configuration "
                f"(the memory stores whole latent codes), got {spatial}."
            )
    for s in spatial:
        if s < min_size:
            raise ValueError(f"every spatial size must be >= {min_size} for this network's depth, got {spatial}.")
    if check_finite and not bool(torch.isfinite(x).all()):
        raise ValueError("input contains NaN or infinite values; clean or mask them before the network.")
