"""A real model file to tamper with: ``save_model`` on a tiny ConvAutoEncoder, with the config
assembled from the shipped configs exactly as training stores it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from mama_monai.engines import save_model
from mama_monai.networks import ConvAutoEncoder
from mama_monai.workflows.config import resolved, workflow_config

#: the tiny network of every model file here (the stored weights match it)
CHANNELS = [4, 8]


def training_config() -> dict[str, Any]:
    """The ``config`` that ``train_model`` stores (configs/train.yaml + network/autoencoder.yaml)."""
    parser = workflow_config("autoencoder", overrides={"network_def#channels": CHANNELS, "data#spatial_size": [32, 32]})
    scoring = parser.get_parsed_content("scoring")
    return {
        "network_def": resolved(parser, "network_def"),
        "preprocessing": dict(parser.get_parsed_content("data")),
        "scoring": {"sigma": float(scoring["sigma"]), "reduction": scoring["reduction"]},
        "loss": resolved(parser, "loss"),
        "training": dict(parser.get_parsed_content("training")),
    }


@pytest.fixture(scope="session")
def good_model(tmp_path_factory) -> Path:
    """A well-formed model file (tiny ConvAutoEncoder, ct_lung at 32 x 32, CT)."""
    torch.manual_seed(0)
    network = ConvAutoEncoder(2, 1, channels=CHANNELS)
    threshold = {"value": 0.01, "method": "normal_quantile_0.95", "quantile": 0.95, "n_normals": 20}
    metrics = {"iterations": 20, "history": [{"iteration": 20, "val_auroc": 0.5}]}
    path = tmp_path_factory.mktemp("good_model") / "model.pt"
    return save_model(path, network, training_config(), threshold, metrics)


@pytest.fixture
def tamper(good_model) -> Callable[[Path, Callable[[dict], None]], Path]:
    """``tamper(path, change)``: a copy of the good model file with ``change(payload)`` applied, saved with torch.save."""

    def make(path: Path, change: Callable[[dict], None]) -> Path:
        payload = copy.deepcopy(torch.load(good_model, map_location="cpu", weights_only=True))
        change(payload)
        torch.save(payload, path)
        return path

    return make
