"""Manifest cases -> preprocessed 2D slices held in memory, ready for the engines.

Each image file (a volume or a 2D image) is loaded once with the preset's pinned reader, the
preset's intensity chain is applied to the whole image (so MRI percentiles are per volume) and the
image is resized in-plane to the model size; then every case of that file takes its slice. Masks
are resized with nearest-neighbour interpolation. A file that cannot be loaded is reported and its
cases skipped; the others go on.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.transforms import Resize

from mama_monai.data.loading import LoadFailure, load_image
from mama_monai.data.manifest import Manifest, ManifestCase
from mama_monai.data.presets import get_preset
from mama_monai.data.simulated_lesions import simulate_lesions

__all__ = ["load_case_slices", "prepare_splits", "simulated_anomalies"]

logger = logging.getLogger(__name__)


def _image_path(manifest: Manifest, relative: str) -> Path:
    return (Path(manifest.root) / relative).resolve()


def _take_slice(volume: torch.Tensor, index: int | None, case_id: str) -> torch.Tensor:
    if volume.ndim == 3:  # (C, W, H): a 2D image is its own slice
        return volume
    if index is None:
        raise ValueError(f"case {case_id!r}: the image is a volume, so slice_index is required, got None.")
    if not 0 <= index < volume.shape[-1]:
        raise ValueError(f"case {case_id!r}: slice_index must be in 0..{volume.shape[-1] - 1}, got {index}.")
    return volume[..., index]


def _load_preprocessed(path: Path, preset: str, spatial_size: Sequence[int]) -> torch.Tensor:
    loader = get_preset(preset, spatial_size, 2, with_loader=True).transforms[0]
    data = loader({"image": str(path)})
    dims = data["image"].ndim - 1
    data = get_preset(preset, spatial_size, dims)(data)
    return torch.as_tensor(data["image"]).float()


def _load_mask(path: Path, spatial_size: Sequence[int]) -> torch.Tensor:
    mask = torch.as_tensor(load_image(path)).float()
    size = list(spatial_size) + ([-1] if mask.ndim == 4 else [])
    return (torch.as_tensor(Resize(size, mode="nearest")(mask)) > 0).float()


def load_case_slices(
    manifest: Manifest, cases: Sequence[ManifestCase], preset: str, spatial_size: Sequence[int]
) -> tuple[list[dict[str, Any]], list[LoadFailure]]:
    """Preprocessed slices of ``cases``.

    Args:
        manifest: the manifest the cases come from (its ``root`` resolves their paths).
        cases: the cases to load.
        preset: a preprocessing preset name (:func:`~mama_monai.data.presets.list_presets`).
        spatial_size: model input size ``(H, W)``.

    Returns:
        ``(items, failures)``: one dict per case in input order, with ``image`` ``(C, H, W)``,
        ``mask`` ``(1, H, W)`` (zeros where the case has none), ``has_mask``, ``label``,
        ``case_id``, ``simulated`` and ``slice_index``; and one
        :class:`~mama_monai.data.loading.LoadFailure` per file that failed.
    """
    by_file: dict[Path, list[ManifestCase]] = defaultdict(list)
    for case in cases:
        by_file[_image_path(manifest, case.image)].append(case)
    items: dict[str, dict[str, Any]] = {}
    failures: list[LoadFailure] = []
    for path, file_cases in by_file.items():
        try:
            volume = _load_preprocessed(path, preset, spatial_size)
            masks: dict[Path, torch.Tensor] = {}
            for case in file_cases:
                mask = None
                if case.mask is not None:
                    mask_path = _image_path(manifest, case.mask)
                    if mask_path not in masks:
                        masks[mask_path] = _load_mask(mask_path, spatial_size)
                    mask = _take_slice(masks[mask_path], case.slice_index, case.case_id)[:1]
                image = _take_slice(volume, case.slice_index, case.case_id)
                items[case.case_id] = {
                    "image": image.contiguous(),
                    "mask": torch.zeros_like(image[:1]) if mask is None else mask.contiguous(),
                    "has_mask": mask is not None,
                    "label": int(case.label),
                    "case_id": case.case_id,
                    "simulated": bool(case.simulated),
                    "slice_index": -1 if case.slice_index is None else int(case.slice_index),
                }
        except Exception as err:  # one bad file never stops the others
            message = " ".join(str(err).split())
            failures.append(LoadFailure(str(path), f"{type(err).__name__}: {message}"))
            logger.warning("skipped %s (%d case(s)): %s", path, len(file_cases), message)
    return [items[c.case_id] for c in cases if c.case_id in items], failures


def simulated_anomalies(
    items: Sequence[dict[str, Any]], seed: int, radius_fraction: Sequence[float] = (0.04, 0.12)
) -> list[dict[str, Any]]:
    """SIMULATED-lesion copies of normal slices (label 1, ``simulated=True``), for validation.

    Used where no real anomalies may be looked at before the test: model selection and threshold
    checks on held-out normal slices with blurred-disk lesions inserted
    (:func:`~mama_monai.data.simulated_lesions.simulate_lesions`), their radius a fraction of the
    slice width, seeded per slice.
    """
    out = []
    for i, item in enumerate(items):
        rng = np.random.default_rng([seed, i])
        image = item["image"][0].numpy()
        width = image.shape[-1]
        radius = (max(1.5, radius_fraction[0] * width), max(2.0, radius_fraction[1] * width))
        foreground = image > 0.05
        lesioned, mask, _ = simulate_lesions(image, rng, n=1, radius_px=radius, foreground=foreground if foreground.any() else None)
        new = dict(item)
        new["image"] = torch.from_numpy(np.ascontiguousarray(lesioned)).float()[None].expand_as(item["image"]).clone()
        new["mask"] = torch.from_numpy(np.ascontiguousarray(mask)).float()[None]
        new.update(has_mask=True, label=1, simulated=True, case_id=f"{item['case_id']}_simulated")
        out.append(new)
    return out


def prepare_splits(parser: Any) -> dict[str, Any]:
    """Train / validation / test slices from the config's ``data`` section.

    The manifest is ``data#manifest`` (or the embedded LIDC-IDRI-0001 demo when null); the split
    is its fixed train/test split or fold ``data#fold``. Only normal training cases are trained
    on. Every ``data#val_every``-th of them (in manifest order) is held out for validation and
    threshold calibration, with SIMULATED-lesion copies when
    ``data#simulated_validation_anomalies`` (so no real anomaly is looked at before the test).

    Returns:
        ``{"manifest", "train", "val", "test", "failures"}``.
    """
    from mama_monai.data.demo import demo_manifest
    from mama_monai.data.manifest import load_manifest, split_cases

    data = parser.get_parsed_content("data")
    manifest = demo_manifest("lidc") if data.get("manifest") is None else load_manifest(data["manifest"])
    split = split_cases(manifest, data.get("fold"))
    train_cases = [c for c in split["train"] if c.label == 0]
    every = int(data.get("val_every", 5))
    if every < 2:
        raise ValueError(f"data#val_every must be >= 2 (one in val_every training slices is held out), got {every}.")
    train, f1 = load_case_slices(manifest, train_cases, data["preset"], data["spatial_size"])
    test, f2 = load_case_slices(manifest, split["test"], data["preset"], data["spatial_size"])
    if not train:
        raise ValueError(f"no normal training case could be loaded from manifest {manifest.dataset!r} (failures: {f1[:3]}).")
    val = [it for i, it in enumerate(train) if i % every == every - 1]
    train = [it for i, it in enumerate(train) if i % every != every - 1]
    if data.get("simulated_validation_anomalies", True):
        val = val + simulated_anomalies(val, seed=int(parser["seed"]))
    return {"manifest": manifest, "train": train, "val": val, "test": test, "failures": f1 + f2}
