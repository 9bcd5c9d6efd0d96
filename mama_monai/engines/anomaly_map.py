"""From an input and its reconstruction to a per-pixel anomaly map and a per-image score."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
from monai.networks.layers import GaussianFilter

from mama_monai.networks.checks import check_choice

__all__ = ["AnomalyMap", "SCORE_REDUCTIONS", "anomaly_map_args"]

#: ``"mean"``: the paper's reconstruction error e_u (mean squared error of the image);
#: ``"max"``: the maximum of the smoothed error map;
#: ``"percentile"``: a high percentile (``percentile``) of the smoothed map inside the foreground.
SCORE_REDUCTIONS = ("mean", "max", "percentile")


_ARGS = ("sigma", "reduction", "percentile", "foreground_threshold", "border")


def anomaly_map_args(scoring: dict) -> dict:
    """The :class:`AnomalyMap` arguments of a config's ``scoring`` section (which also holds
    settings of other components, e.g. ``threshold_quantile``): what a model file stores."""
    return {key: scoring[key] for key in _ARGS if key in scoring}


class AnomalyMap(nn.Module):
    """Squared reconstruction error per pixel, smoothed, restricted to the body, and its reduction.

    1. ``(x - x_hat)^2`` averaged over channels: bright and dark anomalies count alike.
    2. Gaussian smoothing of ``sigma`` pixels (MONAI's :class:`~monai.networks.layers.GaussianFilter`;
       0 disables it): single noisy pixels do not decide, lesion-sized blobs do.
    3. With ``foreground_threshold``, the map is set to 0 outside the *foreground*: the pixels of
       the (preprocessed) input above the threshold, eroded by ``border`` pixels. Air, the scanner
       couch and the body's outline, where every autoencoder's error concentrates, then neither
       show in the map nor decide the score (DESIGN.md §8: whole-image errors hide small lesions).
    4. The image score reduces the map over the foreground (over the whole image where an image
       has no foreground): ``"mean"`` is the paper's e_u (Eq. 14's input), ``"max"`` its maximum,
       ``"percentile"`` (default) its ``percentile``-th percentile, which a lesion of a few
       percent of the body raises but one stray pixel does not.

    Decision (ours; the paper scores the mean error e_u): the default image score is the 99th
    percentile of the 2-pixel-smoothed map inside the eroded foreground. Measured on the
    first release's plain autoencoder (DESIGN.md §8), localised scores beat the mean error on
    the fair LIDC split (0.83 against 0.64); ``docs/accuracy.md`` reports every reduction.

    Args:
        spatial_dims: 2 or 3.
        sigma: Gaussian smoothing in pixels, at most 64 (a model file cannot ask for a huge kernel). Defaults to 2.0.
        reduction: ``"mean"``, ``"max"`` or ``"percentile"``. Defaults to ``"percentile"``.
        percentile: the percentile for ``"percentile"``, in ``(0, 100]``. Defaults to 99.0.
        foreground_threshold: input intensity (after preprocessing) above which a pixel is
            foreground; ``None`` (default) uses the whole image.
        border: pixels eroded from the foreground (>= 0). Defaults to 0.

    Shapes:
        ``map(x, x_hat)``: ``(B, C, *S) -> (B, 1, *S)``; ``score(map)``: ``(B, 1, *S) -> (B,)``.

    Example::

        >>> scorer = AnomalyMap(2, sigma=0, reduction="max")
        >>> scorer.score(scorer.map(torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)))
        tensor([1.])
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        sigma: float = 2.0,
        reduction: str = "percentile",
        percentile: float = 99.0,
        foreground_threshold: Optional[float] = None,
        border: int = 0,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}.")
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not 0 <= sigma <= 64:
            raise ValueError(f"sigma must be a number in [0, 64] (pixels; 0 disables smoothing), got {sigma!r}.")
        check_choice("reduction", reduction, SCORE_REDUCTIONS)
        if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) or not 0 < percentile <= 100:
            raise ValueError(f"percentile must be a number in (0, 100], got {percentile!r}.")
        if foreground_threshold is not None and (
            isinstance(foreground_threshold, bool)
            or not isinstance(foreground_threshold, (int, float))
            or foreground_threshold != foreground_threshold
            or abs(foreground_threshold) == float("inf")
        ):
            raise ValueError(f"foreground_threshold must be a finite number or None (no mask), got {foreground_threshold!r}.")
        if isinstance(border, bool) or not isinstance(border, int) or border < 0:
            raise ValueError(f"border must be an int >= 0 (pixels eroded from the foreground), got {border!r}.")
        self.spatial_dims = spatial_dims
        self.sigma = float(sigma)
        self.reduction = reduction
        self.percentile = float(percentile)
        self.foreground_threshold = None if foreground_threshold is None else float(foreground_threshold)
        self.border = border
        self.smooth = GaussianFilter(spatial_dims, sigma=self.sigma) if sigma > 0 else nn.Identity()

    def foreground(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 1, *S)`` float mask: 1 where the input is above the threshold after erosion (all ones without a threshold)."""
        if self.foreground_threshold is None:
            return torch.ones_like(image[:, :1], dtype=torch.float32)
        mask = (image.float().mean(dim=1, keepdim=True) > self.foreground_threshold).float()
        if self.border > 0:
            pool = nn.functional.max_pool2d if self.spatial_dims == 2 else nn.functional.max_pool3d
            mask = 1.0 - pool(1.0 - mask, kernel_size=2 * self.border + 1, stride=1, padding=self.border)
        return mask

    def map(self, image: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
        err = (image.float() - reconstruction.float()).pow(2).mean(dim=1, keepdim=True)
        return self.smooth(err) * self.foreground(image)

    def score(self, anomaly_map: torch.Tensor) -> torch.Tensor:
        """Reduce each map over its foreground: the map's non-zero support where there is one."""
        flat = anomaly_map.flatten(1).float()
        if self.reduction == "max":
            return flat.amax(dim=1)
        if self.foreground_threshold is None:
            inside = torch.ones_like(flat, dtype=torch.bool)
        else:
            inside = flat > 0
            inside = inside | ~inside.any(dim=1, keepdim=True)  # no foreground: use every pixel
        if self.reduction == "mean":
            return (flat * inside).sum(dim=1) / inside.sum(dim=1)
        return torch.stack([torch.quantile(row[keep], self.percentile / 100.0) for row, keep in zip(flat, inside)])

    def forward(self, image: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
        return self.score(self.map(image, reconstruction))
