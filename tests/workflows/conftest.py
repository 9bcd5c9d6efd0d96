"""Tiny workflow settings shared by the workflow tests: a few seconds of training on 2 CPU cores.

Tests get them through the ``tiny`` fixture, not by importing this module, so that several
``conftest.py`` files in the test tree never clash.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

#: every workflow run: 32x32 slices, 20 iterations of batch 4, validation every 10
TINY_ARGS = (
    "--data#spatial_size", "[32, 32]",
    "--training#iterations", "20",
    "--training#val_interval", "10",
    "--training#batch_size", "4",
)  # fmt: skip

#: a MAMA Net small enough to train in seconds (applies to mamanet_compact only)
TINY_MAMANET_ARGS = (
    "--network_def#channels", "[8, 16, 16]",
    "--network_def#decoder_channels", "[16, 8]",
    "--network_def#num_slots", "16",
    "--network_def#block_args#head_dim", "8",
)  # fmt: skip

#: the same as TINY_ARGS, as the overrides dict that run_demo takes
TINY_OVERRIDES = {
    "data#spatial_size": [32, 32],
    "training#iterations": 20,
    "training#val_interval": 10,
    "training#batch_size": 4,
}


@pytest.fixture(scope="session")
def tiny() -> SimpleNamespace:
    """``tiny.args`` (CLI overrides), ``tiny.mamanet`` (MAMA Net size overrides), ``tiny.overrides`` (dict)."""
    return SimpleNamespace(args=list(TINY_ARGS), mamanet=list(TINY_MAMANET_ARGS), overrides=dict(TINY_OVERRIDES))


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread():
    """One intra-op thread while the workflow tests run: their tensors are tiny, and on a shared
    2-core machine two spinning OpenMP threads made a training step up to 10x slower (measured
    0.11 s vs 1.3 s for the tiny MAMA Net). Subprocesses get ``OMP_NUM_THREADS=1`` likewise."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """``model``: a tiny ct_lung model file at 32 x 32, alone in its folder ``run/``; ``crop``: three
    slices of the real demo CT; ``root``: the folder holding both."""
    import nibabel as nib

    from mama_monai.data import load_demo_ct
    from tests.model_files import tiny_model_file

    root = tmp_path_factory.mktemp("files")
    model = tiny_model_file(root / "run" / "model.pt", 0.05)
    crop = root / "ct.nii.gz"
    nib.save(nib.load(load_demo_ct()["image"]).slicer[:, :, 60:63], crop)
    return {"model": model, "crop": crop, "root": root}
