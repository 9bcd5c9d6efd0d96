"""From an input and its reconstruction to a per-pixel anomaly map and a per-image score."""

from __future__ import annotations

import torch
import torch.nn as nn
from monai.networks.layers import GaussianFilter

from mama_monai.networks.checks import check_choice

__all__ = ["AnomalyMap", "SCORE_REDUCTIONS"]

#: ``"mean"``: the paper's reconstruction error e_u (mean squared error of the image);
#: ``"max"``: the maximum of the smoothed error map (localised anomalies, DESIGN.md §7).
SCORE_REDUCTIONS = ("mean", "max")


class AnomalyMap(nn.Module):
    """Squared reconstruction error per pixel (mean over channels), Gaussian-smoothed, and its reduction.

    The map is ``(x - x_hat)^2`` averaged over channels, then smoothed with a Gaussian of ``sigma``
    pixels (MONAI's :class:`~monai.networks.layers.GaussianFilter`; 0 disables it). The image score
    reduces the map by ``reduction``: ``"mean"`` is the paper's e_u (Eq. 14's input; smoothing
    does not change a mean except at the border), ``"max"`` picks up small, localised anomalies.

    Args:
        spatial_dims: 2 or 3.
        sigma: Gaussian smoothing in pixels. Defaults to 2.0.
        reduction: ``"mean"`` or ``"max"``. Defaults to ``"max"``.

    Shapes:
        ``map(x, x_hat)``: ``(B, C, *S) -> (B, 1, *S)``; ``score(map)``: ``(B, 1, *S) -> (B,)``.

    Example::

        >>> scorer = AnomalyMap(2, sigma=0)
        >>> scorer.score(scorer.map(torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)))
        tensor([1.])
    """

    def __init__(self, spatial_dims: int = 2, sigma: float = 2.0, reduction: str = "max") -> None:
        super().__init__()
        if not sigma >= 0:
            raise ValueError(f"sigma must be >= 0 (pixels; 0 disables smoothing), got {sigma!r}.")
        check_choice("reduction", reduction, SCORE_REDUCTIONS)
        self.sigma = float(sigma)
        self.reduction = reduction
        self.smooth = GaussianFilter(spatial_dims, sigma=self.sigma) if sigma > 0 else nn.Identity()

    def map(self, image: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
        err = (image.float() - reconstruction.float()).pow(2).mean(dim=1, keepdim=True)
        return self.smooth(err)

    def score(self, anomaly_map: torch.Tensor) -> torch.Tensor:
        flat = anomaly_map.flatten(1)
        return flat.amax(dim=1) if self.reduction == "max" else flat.mean(dim=1)

    def forward(self, image: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
        return self.score(self.map(image, reconstruction))
