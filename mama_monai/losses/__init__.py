"""Losses: exact 1-D Wasserstein between intensities and the weighted reconstruction objective."""

from mama_monai.losses.reconstruction import ReconstructionLoss
from mama_monai.losses.wasserstein import WassersteinLoss, wasserstein_1d

__all__ = ["ReconstructionLoss", "WassersteinLoss", "wasserstein_1d"]
