"""A real input for tests that compare two implementations: one axial slice of the embedded
LIDC-IDRI-0001 CT (or a crop of it), lung-windowed to [0, 1] and area-resized to the model's size."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import torch


def lung_window_slice(ct_path, index: int, size: int = 32) -> np.ndarray:
    """Slice ``index`` of the last axis of ``ct_path`` (HU), as a float32 ``(1, 1, size, size)`` array."""
    hu = np.asarray(nib.load(ct_path).dataobj[:, :, index], dtype=np.float32)
    x = torch.from_numpy(np.clip((hu + 1000.0) / 1400.0, 0.0, 1.0))[None, None]
    return torch.nn.functional.interpolate(x, size=(size, size), mode="area").numpy()
