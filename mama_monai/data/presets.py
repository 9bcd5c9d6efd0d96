"""Modality presets: MONAI dictionary-transform chains read from YAML with ``monai.bundle.ConfigParser``.

Each preset is one YAML file in the package folder ``mama_monai/presets/`` — package data, so an
installed package finds it (``configs/preprocessing/README.md`` points there). The files hold every
hyper-parameter (HU window, percentiles, model input size, resize mode) with a comment; this module
only fills in the key name and, where asked, the spatial size.

=================  ===========================================================================
name               chain (key ``"image"``, then ``Resized`` to ``spatial_size``)
=================  ===========================================================================
``ct_lung``        ``ScaleIntensityRanged`` HU [-1000, 400] → [0, 1], clipped; crop to the body
``ct_soft_tissue`` ``ScaleIntensityRanged`` HU [-160, 240] (level 40, width 400) → [0, 1], clipped;
                   crop to the body
``cxr``            ``ScaleIntensityRangePercentilesd`` 0.5 / 99.5 → [0, 1], clipped; RGB → gray
``mri_t1``         crop to the head; ``ScaleIntensityRangePercentilesd`` 1 / 99.5 per volume → [0, 1],
                   clipped to [0, 1.5]
``mri_t2``         crop to the head; ``ScaleIntensityRangePercentilesd`` 1 / 99 per volume → [0, 1],
                   clipped to [0, 1.5]
``mri_zscore``     crop to the head; ``NormalizeIntensityd`` over non-zero voxels (z-score, unbounded)
=================  ===========================================================================

Apply a preset to the whole image as loaded — a 2D image ``(C, W, H)`` with ``spatial_dims=2``,
or a volume ``(C, W, H, D)`` with ``spatial_dims=3`` (then only the first two axes are resized
and the slice count is kept) — *before* cutting slices, so that per-volume statistics (MRI) are
per volume. Resizing updates the ``MetaTensor`` affine, so the result still overlays the original.
The CT presets first crop the image in-plane to the body's bounding box (HU > -400, the largest
region, :class:`~mama_monai.data.body_crop.CropToBodyd`), so a CT framed with air and couch is seen
as the body-cropped demo CTs were. The MR presets first crop to the head (above 10 % of the
volume's 99th percentile, each slice's mask opened by one voxel against background noise), before
their intensity scaling, as the demo T1 was cropped to its head. ``crop_to_body=False`` leaves the
crop out (model files written before it existed are scored without it:
:data:`~mama_monai.data.body_crop.CROP_RULES`).

Example:
    >>> chain = get_preset("ct_lung", spatial_size=(64, 64))
    >>> import torch; from monai.data import MetaTensor
    >>> chain({"image": MetaTensor(torch.full((1, 100, 80), -1000.0))})["image"].shape
    torch.Size([1, 64, 64])
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from monai.bundle import ConfigParser
from monai.transforms import Compose

from mama_monai.data.body_crop import CropToBodyd

__all__ = ["get_preset", "list_presets", "preset_path"]


def _folder() -> Path:
    return Path(str(resources.files("mama_monai"))) / "presets"


def list_presets() -> list[str]:
    """Names of the available presets (the YAML file stems), sorted."""
    return sorted(p.stem for p in _folder().glob("*.yaml"))


def preset_path(name: str) -> Path:
    """Path of the YAML file of preset ``name``.

    Raises:
        ValueError: unknown name; the message lists the valid ones.
    """
    names = list_presets()
    if name not in names:
        raise ValueError(f"preset must be one of {names}, got {name!r}.")
    return _folder() / f"{name}.yaml"


def get_preset(
    name: str,
    spatial_size: Sequence[int] | None = None,
    spatial_dims: int = 2,
    keys: str | Sequence[str] = "image",
    with_loader: bool = False,
    crop_to_body: bool = True,
) -> Compose:
    """Build the transform chain of preset ``name``.

    Args:
        name: one of :func:`list_presets` (table in the module docstring).
        spatial_size: model input size ``(H, W)`` (two positive ints); ``None`` (default) keeps
            the preset file's ``spatial_size`` (228 × 228, the paper's).
        spatial_dims: 2 (default) for 2D images ``(C, W, H)``; 3 for volumes ``(C, W, H, D)``,
            resized in-plane only (the slice axis, last, keeps its length).
        keys: the dictionary key(s) of the image (default ``"image"``).
        with_loader: prepend the preset's loader (:class:`~mama_monai.data.loading.LoadMedicalImaged`
            with the preset's reader options, e.g. RGB → gray for ``cxr``), so the chain takes paths.
        crop_to_body: keep the preset's :class:`~mama_monai.data.body_crop.CropToBodyd` (default;
            CT and MR presets); False drops it.

    Returns:
        A ``monai.transforms.Compose`` of dictionary transforms.

    Raises:
        ValueError: unknown ``name`` (lists the valid names), a bad ``spatial_size`` or ``spatial_dims``.
    """
    path = preset_path(name)
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}.")
    parser = ConfigParser()
    parser.read_config(str(path))
    size = list(parser["spatial_size"] if spatial_size is None else spatial_size)
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ValueError(f"spatial_size must be two positive ints (H, W), got {spatial_size!r}.")
    parser["spatial_size"] = size + [-1] if spatial_dims == 3 else size
    parser["keys"] = keys
    chain = parser.get_parsed_content("preprocessing", instantiate=True)
    transforms = [t for t in chain.transforms if crop_to_body or not isinstance(t, CropToBodyd)]
    if with_loader:
        transforms = [parser.get_parsed_content("loader", instantiate=True), *transforms]
    return Compose(transforms)
