"""Random spatial augmentation of training batches: small rotations, scalings and shifts.

Why: the demo trains on the normal slices of two patients. A third patient's anatomy sits a few
degrees and millimetres off what the networks saw, and the residual at every edge then looks like
an anomaly (docs/accuracy/scanner_ct.json: a threshold calibrated on the demo's patients calls
most slices of a new chest CT anomalous). Showing each training slice under a random small
affine transform is the usual remedy for few training subjects. The risk is the other way:
a network that reconstructs more kinds of images may also reconstruct lesions. Measured
(``docs/accuracy/augmentation.md``, five seeds, both tasks): an unlabelled third patient does look
more normal, but every model detects less (LIDC MAMA Net 0.77 -> 0.71 mild / 0.62 strong, the
baselines lose more) and validation on simulated lesions said so beforehand. So it is off by
default (``training#augment: null``), an option for data where it validates better.

Each image of the batch gets its own transform, drawn by MONAI's
:class:`~monai.transforms.RandAffine` seeded from torch's global generator, so a run is
reproducible under ``set_determinism`` and ``--resume`` (whose checkpoint holds that generator)
continues with the draws the interrupted run would have made. The augmented image is both the
network's input (before ``training#input_noise``) and the loss's target; validation,
calibration and scoring see the slices as they are.
"""

from __future__ import annotations

import math

import torch
from monai.transforms import RandAffine

__all__ = ["RandomAffineBatch"]

#: the keys of ``training#augment``
KEYS = ("rotate_deg", "scale", "translate", "prob")


def _number(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"training#augment#{name} must be a number in [{low}, {high}], got {value!r}.")
    return float(value)


class RandomAffineBatch:
    """Per-image random affine transform of a ``(B, C, H, W)`` or ``(B, C, D, H, W)`` batch.

    Args:
        rotate_deg: rotation drawn uniformly in +-this many degrees (in-plane; about every axis in 3D).
        scale: the sampling grid is scaled by a factor drawn uniformly in 1 +- this, per axis (MONAI's
            ``scale_range``), so the image is zoomed by 1 / (1 +- scale).
        translate: shift drawn uniformly in +- this fraction of the image size, per axis.
        prob: probability that an image is transformed at all (else it is passed as it is).

    Outside the field the image is filled with zeros (the presets' value for air / background).

    Example:
        >>> aug = RandomAffineBatch(rotate_deg=10, scale=0.1, translate=0.05)
        >>> aug(torch.rand(2, 1, 32, 32)).shape
        torch.Size([2, 1, 32, 32])
    """

    def __init__(self, rotate_deg: float = 0.0, scale: float = 0.0, translate: float = 0.0, prob: float = 1.0) -> None:
        self.rotate_deg = _number("rotate_deg", rotate_deg, 0.0, 180.0)
        self.scale = _number("scale", scale, 0.0, 0.9)
        self.translate = _number("translate", translate, 0.0, 0.5)
        self.prob = _number("prob", prob, 0.0, 1.0)

    @classmethod
    def from_config(cls, section: dict | None) -> "RandomAffineBatch":
        """From ``training#augment`` (``{rotate_deg, scale, translate, prob}``, any subset; ``None`` = off)."""
        if section is None:
            return cls()
        if not isinstance(section, dict) or set(section) - set(KEYS):
            raise ValueError(f"training#augment must be null or a dict with keys among {list(KEYS)}, got {section!r}.")
        return cls(**section)

    @property
    def active(self) -> bool:
        return self.prob > 0 and (self.rotate_deg > 0 or self.scale > 0 or self.translate > 0)

    def _transform(self, spatial: list[int], device: torch.device) -> RandAffine:
        rotate = math.radians(self.rotate_deg)
        return RandAffine(
            prob=self.prob,
            rotate_range=(rotate,) if len(spatial) == 2 else (rotate,) * 3,
            scale_range=(self.scale,) * len(spatial),
            translate_range=tuple(self.translate * s for s in spatial),
            padding_mode="zeros",
            mode="bilinear",
            device=device,
        )

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return images
        _, _, *spatial = images.shape
        transform = self._transform(spatial, images.device)
        transform.set_random_state(seed=int(torch.randint(0, 2**31 - 1, ())))
        out = [transform(image.float()) for image in images]
        return torch.stack([o.as_tensor() if hasattr(o, "as_tensor") else o for o in out]).to(images.dtype)
