"""Coarse input noise for denoising training: the network sees a corrupted image, the loss compares
its output with the clean one.

Why: an autoencoder trained only to reproduce its input also reproduces lesion-sized blobs (a
blurred disk is a low-frequency pattern like any anatomy), so the residual at a lesion stays small.
Trained to *remove* smooth blob-sized perturbations from normal anatomy, it learns to map
"normal + blob" back to normal, and an anomaly then leaves a residual (Kascenas, O'Neil and
Pugeault, "Denoising autoencoders for unsupervised anomaly detection in brain MRI", MIDL 2022:
Gaussian noise drawn on a 16 x 16 grid, upsampled, standard deviation 0.2 of images scaled to about
[0, 1]). Not in the MAMA Net paper: our decision, on by default in ``configs/train.yaml``
(``training#input_noise: {std: 0.2, resolution: 16}``) for every network, chosen by validation
AUROC (SIMULATED lesions in held-out training slices); ``std: 0`` is the paper's plain
reconstruction. ``docs/accuracy.md`` measures both on the test tasks.

Only the training forward is corrupted; validation, calibration and scoring see clean images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["CoarseNoise"]


class CoarseNoise:
    """``x + std * upsample(N(0, 1) on a resolution^d grid)``, the grid offset at random per batch.

    Args:
        std: standard deviation of the noise in image units (>= 0; 0 returns the input itself).
        resolution: noise grid points along each spatial axis (>= 2): 16 on a 128 x 128 image gives
            blobs of about 8 pixels.

    Example:
        >>> noisy = CoarseNoise(std=0.2, resolution=16)(torch.zeros(2, 1, 64, 64))
        >>> noisy.shape
        torch.Size([2, 1, 64, 64])
    """

    def __init__(self, std: float = 0.0, resolution: int = 16) -> None:
        if isinstance(std, bool) or not isinstance(std, (int, float)) or not 0 <= std < float("inf"):
            raise ValueError(f"training#input_noise#std must be a finite number >= 0 (0 = off), got {std!r}.")
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
            raise ValueError(f"training#input_noise#resolution must be an int >= 2 (noise grid points per axis), got {resolution!r}.")
        self.std, self.resolution = float(std), resolution

    @classmethod
    def from_config(cls, section: dict | None) -> "CoarseNoise":
        """From ``training#input_noise`` (``{"std": ..., "resolution": ...}``; ``None`` = off)."""
        if section is None:
            return cls()
        if not isinstance(section, dict) or set(section) - {"std", "resolution"}:
            raise ValueError(f"training#input_noise must be null or a dict with std and resolution, got {section!r}.")
        return cls(**section)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.std == 0:
            return images
        batch, channels, *spatial = images.shape
        # one grid point more than asked, upsampled past the image and cropped at a random offset,
        # so that the noise is not aligned with the image grid
        grid = torch.randn(batch, channels, *([self.resolution + 1] * len(spatial)), device=images.device)
        step = [s / self.resolution for s in spatial]
        big = [int(round(s + st)) for s, st in zip(spatial, step)]
        mode = "bilinear" if len(spatial) == 2 else "trilinear"
        noise = F.interpolate(grid, size=big, mode=mode, align_corners=False)
        offsets = [int(torch.randint(0, max(1, b - s + 1), (1,))) for b, s in zip(big, spatial)]
        crop = noise[(slice(None), slice(None), *[slice(o, o + s) for o, s in zip(offsets, spatial)])]
        return images + self.std * crop.to(images.dtype)
