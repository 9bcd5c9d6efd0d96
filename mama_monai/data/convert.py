"""Write any supported input as NIfTI, as loaded or as the model sees it (``mama-monai convert``).

The input is loaded exactly as the pipelines load it (:func:`~mama_monai.data.loading.load_image`
with :class:`~mama_monai.data.readers.SimpleITKReader`; with a preset, the preset's own loader
options, e.g. RGB → gray for ``cxr``). Output geometry:

- **no preset**: the loaded grid and values — physical units (HU for CT, the modality/VOI output
  for radiographs), the reader's RAS affine. It overlays the original in ITK-SNAP / 3D Slicer and
  its affine equals SimpleITK's reading of the source (converted to RAS as nibabel stores it).
- **with a preset** (``grid="model"``, default): the preset's intensities and the model's in-plane
  size (e.g. 228 × 228; the slice count of a volume is kept). MONAI's ``Resize`` rescales the
  affine so that the field of view is unchanged: voxels are larger, but the image still lands on
  the original anatomy when overlaid. ``grid="original"`` resizes back to the loaded grid and
  affine (what the model saw, voxel-for-voxel comparable with the original).

Writing is atomic (:func:`~mama_monai.atomic.atomic_write`): a temporary file in the output's
folder, then ``os.replace``; a full disk is reported naming the output.

Example:
    >>> convert("ct_folder", "ct.nii.gz")  # doctest: +SKIP
    >>> convert("cxr.dcm", "cxr_model.nii.gz", preset="cxr")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

from monai.data import MetaTensor

from mama_monai.data.loading import load_image
from mama_monai.data.nifti import write_nifti
from mama_monai.data.presets import get_preset
from mama_monai.data.slicing import slice_volume, stack_slices

__all__ = ["convert"]

_GRIDS = ("model", "original")


def convert(
    input_path: str | PathLike,
    output_path: str | PathLike,
    preset: str | None = None,
    series_uid: str | None = None,
    spatial_size: Sequence[int] | None = None,
    grid: str = "model",
) -> MetaTensor:
    """Load ``input_path`` and write it to ``output_path`` (``.nii`` or ``.nii.gz``).

    Args:
        input_path: DICOM folder or file, NIfTI, PNG or JPEG.
        output_path: the NIfTI file to write; its folder must exist.
        preset: a preset name (:func:`~mama_monai.data.presets.list_presets`) or ``None`` (default:
            physical units, loaded grid).
        series_uid: the series to read from a folder holding several.
        spatial_size: model input ``(H, W)`` with a preset; default the preset's (228 × 228).
        grid: with a preset, ``"model"`` (default, model size, same field of view) or
            ``"original"`` (resized back to the loaded grid).

    Returns:
        The image written, channel-first ``MetaTensor``.

    Raises:
        ValueError: a bad ``output_path`` suffix, ``grid`` or preset name.
        ImageLoadError: the input cannot be loaded.
    """
    output = Path(output_path)
    if not output.name.lower().endswith((".nii", ".nii.gz")):
        raise ValueError(f"output_path must end with .nii or .nii.gz, got {str(output)!r}.")
    if grid not in _GRIDS:
        raise ValueError(f"grid must be one of {_GRIDS}, got {grid!r}.")
    if not output.parent.is_dir():
        raise ValueError(f"output folder {str(output.parent)!r} does not exist.")
    if preset is None:
        image = load_image(input_path, series_uid=series_uid)
    else:
        loader = get_preset(preset, spatial_size, with_loader=True).transforms[0]
        image = loader({"image": input_path, "series_uid": series_uid})["image"]
        chain = get_preset(preset, spatial_size, spatial_dims=image.ndim - 1)
        image = chain({"image": image})["image"]
        if grid == "original":
            image = stack_slices([s["image"] for s in slice_volume({"image": image})], grid="original")
    write_nifti(output, image)
    return image
