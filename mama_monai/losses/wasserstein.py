"""Exact 1-D Wasserstein-1 distance between intensity distributions (MAMA Net Eq. 12-13)."""

from __future__ import annotations

import torch
import torch.nn as nn
from monai.utils import LossReduction

__all__ = ["WassersteinLoss", "wasserstein_1d"]


def wasserstein_1d(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """W1 between the intensity distributions of each image pair.

    For two samples of equal size the 1-D Wasserstein-1 distance is exactly the mean absolute
    difference of the sorted values, ``mean(|sort(x) - sort(y)|)``: differentiable (through the
    sort's permutation) and ``O(n log n)``. This is the paper's "EM" term read as the distance
    between the data distributions of ``x`` and ``x_hat``, image by image.

    Args:
        input: ``(B, *)``.
        target: same shape as ``input``.

    Returns:
        ``(B,)`` distances.
    """
    if input.shape != target.shape:
        raise ValueError(f"input and target must have the same shape, got {list(input.shape)} and {list(target.shape)}.")
    b = input.shape[0]
    x = torch.sort(input.reshape(b, -1).float(), dim=1).values
    y = torch.sort(target.reshape(b, -1).float(), dim=1).values
    return (x - y).abs().mean(dim=1)


class WassersteinLoss(nn.Module):
    """:func:`wasserstein_1d` with a MONAI reduction (``"mean"``, ``"sum"`` or ``"none"``).

    Example::

        >>> WassersteinLoss()(torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4))
        tensor(1.)
    """

    def __init__(self, reduction: LossReduction | str = LossReduction.MEAN) -> None:
        super().__init__()
        self.reduction = LossReduction(reduction).value

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        d = wasserstein_1d(input, target)
        if self.reduction == LossReduction.MEAN.value:
            return d.mean()
        if self.reduction == LossReduction.SUM.value:
            return d.sum()
        return d
