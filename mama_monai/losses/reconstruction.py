"""The training objective: weighted MSE + Wasserstein + the memory's own term."""

from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn as nn

from mama_monai.arguments import records_arguments
from mama_monai.losses.wasserstein import WassersteinLoss

__all__ = ["ReconstructionLoss"]


@records_arguments
class ReconstructionLoss(nn.Module):
    """``mse_weight * MSE(x_hat, x) + wasserstein_weight * W1(x_hat, x) + memory_weight * memory_loss``.

    The paper's Eq. 13 is MSE + EM with equal weights (the defaults). ``memory_loss`` is the
    readout's own term (:attr:`~mama_monai.networks.outputs.MemoryReadout.loss`): the hash
    memory's codebook + commitment terms (weight 1 by default), or MemAE's entropy (use 0.0002).

    Args:
        mse_weight: weight of the mean squared error. Defaults to 1.0.
        wasserstein_weight: weight of the exact 1-D W1 between intensities. Defaults to 1.0.
        memory_weight: weight of the memory term. Defaults to 1.0.

    Example::

        >>> loss = ReconstructionLoss(wasserstein_weight=0.5)
        >>> loss(torch.zeros(2, 1, 8, 8), torch.ones(2, 1, 8, 8))
        tensor(1.5000)
    """

    def __init__(self, mse_weight: float = 1.0, wasserstein_weight: float = 1.0, memory_weight: float = 1.0) -> None:
        super().__init__()
        for name, value in (("mse_weight", mse_weight), ("wasserstein_weight", wasserstein_weight), ("memory_weight", memory_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}.")
        self.mse_weight = float(mse_weight)
        self.wasserstein_weight = float(wasserstein_weight)
        self.memory_weight = float(memory_weight)
        self.wasserstein = WassersteinLoss(reduction="mean")

    def components(
        self, reconstruction: torch.Tensor, target: torch.Tensor, memory_loss: Optional[torch.Tensor] = None
    ) -> Dict[str, torch.Tensor]:
        """The weighted total (``"loss"``) and each unweighted term, for logging."""
        mse = nn.functional.mse_loss(reconstruction.float(), target.float())
        total = self.mse_weight * mse
        terms = {"mse": mse}
        if self.wasserstein_weight > 0:
            w1 = self.wasserstein(reconstruction, target)
            total = total + self.wasserstein_weight * w1
            terms["wasserstein"] = w1
        if memory_loss is not None and self.memory_weight > 0:
            total = total + self.memory_weight * memory_loss
            terms["memory"] = memory_loss
        terms["loss"] = total
        return terms

    def forward(
        self, reconstruction: torch.Tensor, target: torch.Tensor, memory_loss: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        return self.components(reconstruction, target, memory_loss)["loss"]
