"""Preprocessing exactly as training does it: one class for training, evaluation and scoring.

:class:`Preprocessor` loads one input (a DICOM series folder or file, NIfTI, NRRD, MHA/MHD, PNG,
JPEG or TIFF: :class:`~mama_monai.data.loading.LoadMedicalImaged`, canonical LPS orientation) and
applies the preset's chain (:func:`~mama_monai.data.presets.get_preset`): the 2D chain to an image
``(C, H, W)``, the 3D chain (in-plane resize, the slice axis kept) to a volume ``(C, H, W, D)``;
for the CT and MR presets with the crop to the body (:mod:`mama_monai.data.body_crop`) unless
``crop_to_body=False`` (a model file stores which: ``data#crop_to_body``).
The training loader (:mod:`mama_monai.data.case_slices`), ``score`` and the bundle's inference
preprocessing all call it, so that a model sees at scoring time what it saw in training.

Example:
    >>> pre = Preprocessor("ct_lung", (64, 64))  # doctest: +SKIP
    >>> pre({"image": "scan/"})["image"].shape  # doctest: +SKIP
    torch.Size([1, 64, 64, 133])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monai.transforms import Compose

from mama_monai.data.body_crop import CropToBodyd
from mama_monai.data.presets import get_preset

__all__ = ["Preprocessor", "check_crop_to_body"]


def check_crop_to_body(value: Any, where: str = "data#crop_to_body") -> bool:
    """``data#crop_to_body`` (or a model file's stored value), checked: a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"{where} must be true or false (crop CT inputs to the body before resizing), got {value!r}.")
    return value


class Preprocessor:
    """Load + preprocess one input with preset ``preset`` at model size ``spatial_size`` ``(H, W)``.

    The preset's transforms are built once, here (building a preset costs ~70 ms of
    ``ConfigParser`` work). ``load(data)`` reads the input only; ``chain(data)`` preprocesses what
    ``load`` returned; calling the object does both.

    Raises:
        ValueError: an unknown ``preset`` or a bad ``spatial_size`` (from :func:`get_preset`).
    """

    def __init__(self, preset: str, spatial_size: Sequence[int], crop_to_body: bool = True) -> None:
        self.preset, self.spatial_size = preset, [int(s) for s in spatial_size]
        loader, *chain2d = get_preset(preset, self.spatial_size, 2, with_loader=True, crop_to_body=crop_to_body).transforms
        self.loader = loader
        self.chains = {2: Compose(chain2d), 3: get_preset(preset, self.spatial_size, 3, crop_to_body=crop_to_body)}
        #: whether the chain crops to the body (the preset has the crop and it was not turned off)
        self.crops = any(isinstance(t, CropToBodyd) for t in chain2d)

    def load(self, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` (``image``: a path; optionally ``series_uid``) with the image read, in LPS order."""
        return self.loader(dict(data))

    def chain(self, data: dict[str, Any]) -> dict[str, Any]:
        """The preset's 2D or 3D chain, by the loaded image's dimensions."""
        return self.chains[data["image"].ndim - 1](data)

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        return self.chain(self.load(data))
