"""Shared fixtures: small real images for tests that train or score."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file


@pytest.fixture(scope="session")
def real_ct_slice() -> torch.Tensor:
    """pydicom's bundled CT_small.dcm (a real 128x128 CT slice) in HU, soft-tissue window to [0, 1],
    average-pooled to 32x32: shape ``(1, 1, 32, 32)``."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    hu = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    img = np.clip((hu + 160.0) / 400.0, 0.0, 1.0)
    x = torch.from_numpy(img)[None, None]
    return torch.nn.functional.avg_pool2d(x, 4)
