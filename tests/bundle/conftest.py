"""One tiny bundle training run (``python -m monai.bundle run`` in a subprocess) shared by the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NETWORK = "configs/network/mamanet_compact.yaml"
#: a compact MAMA Net small enough for seconds of CPU, at 32 x 32
TINY = [
    "--data#spatial_size", "[32, 32]",
    "--network_def#channels", "[8, 16, 16]",
    "--network_def#decoder_channels", "[16, 8]",
    "--network_def#num_slots", "16",
    "--network_def#block_args#head_dim", "8",
]  # fmt: skip


def bundle_command(*args: str) -> list[str]:
    """``python -m monai.bundle <args>`` with this interpreter."""
    return [sys.executable, "-m", "monai.bundle", *args]


def run_bundle(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python -m monai.bundle`` from the repository root (the bundle root); fail with its output."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TQDM_DISABLE": "1"}
    done = subprocess.run(bundle_command(*args), cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"monai.bundle {args[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return done


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """``models/`` folder of a 10-iteration bundle training run on the embedded demo CT."""
    models = tmp_path_factory.mktemp("bundle") / "models"
    run_bundle(
        "run",
        "--config_file", f"['configs/train.yaml','{NETWORK}']",
        "--meta_file", "configs/metadata.json",
        "--output_dir", str(models),
        "--device", "cpu",
        "--training#iterations", "10",
        "--training#val_interval", "10",
        *TINY,
    )  # fmt: skip
    return models
