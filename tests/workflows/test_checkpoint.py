"""The model file: save_model / load_model round trip, weights-only loading, and every refused file."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

from mama_monai.engines import CheckpointError, load_model, read_checkpoint, save_model
from mama_monai.engines.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION

NETWORK_DEF = {
    "_target_": "mama_monai.networks.MAMANet",
    "spatial_dims": 2,
    "in_channels": 1,
    "img_size": None,
    "channels": [8, 16, 16],
    "decoder_channels": [16, 8],
    "memory_mode": "local",
    "num_slots": 16,
    "block_args": {"head_dim": 8, "context_size": 8},
}
CONFIG = {
    "network_def": NETWORK_DEF,
    "preprocessing": {"preset": "ct_lung", "spatial_size": [32, 32], "modality": "CT"},
    "scoring": {"sigma": 1.0, "reduction": "max"},
}
THRESHOLD = {"value": 0.25, "method": "normal_quantile_0.95", "quantile": 0.95}


class _MakesDirectory:
    """Unpickling this runs ``os.mkdir(path)``: what an attacker's object could do instead."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def _network() -> torch.nn.Module:
    torch.manual_seed(0)
    return ConfigParser({"network_def": copy.deepcopy(NETWORK_DEF)}).get_parsed_content("network_def").eval()


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    path = tmp_path_factory.mktemp("model") / "model.pt"
    network = _network()
    metrics = {"iterations": 20, "history": [{"iteration": 10, "val_auroc": np.float64(0.75)}]}
    save_model(path, network, CONFIG, {**THRESHOLD, "n_normals": np.int64(12)}, metrics)
    return path, network


def _match(path: Path) -> str:
    return re.escape(repr(str(path)))


def test_round_trip_gives_the_same_network_outputs_and_plain_metadata(saved):
    path, network = saved
    loaded, payload = load_model(path)
    assert not loaded.training
    x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(loaded(x), network(x))
    assert payload["config"] == CONFIG
    assert payload["threshold"] == {**THRESHOLD, "n_normals": 12} and type(payload["threshold"]["n_normals"]) is int
    assert payload["metrics"]["history"][0]["val_auroc"] == 0.75
    assert set(payload["versions"]) >= {"mama_monai", "monai", "torch", "python"}


def test_model_file_loads_with_weights_only(saved):
    path, network = saved
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["format"] == CHECKPOINT_FORMAT and raw["format_version"] == CHECKPOINT_FORMAT_VERSION
    assert raw["state_dict"].keys() == network.state_dict().keys()
    assert not list(path.parent.glob(".*"))  # no temporary file left beside it


def _truncated(path: Path, good: Path) -> None:
    data = good.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def _random_bytes(path: Path, good: Path) -> None:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())


def _foreign_dict(path: Path, good: Path) -> None:
    torch.save({"model": {"weight": torch.zeros(3)}, "epoch": 3}, path)


def _wrong_num_slots(path: Path, good: Path) -> None:
    payload = torch.load(good, weights_only=True)
    payload["config"]["network_def"]["num_slots"] = 32  # the stored weights have 16 slots
    torch.save(payload, path)


def _unknown_network(path: Path, good: Path) -> None:
    payload = torch.load(good, weights_only=True)
    payload["config"]["network_def"]["_target_"] = "mama_monai.networks.NoSuchNet"
    torch.save(payload, path)


def _newer_format(path: Path, good: Path) -> None:
    payload = torch.load(good, weights_only=True)
    payload["format_version"] = CHECKPOINT_FORMAT_VERSION + 1
    torch.save(payload, path)


@pytest.mark.parametrize(
    "damage, message",
    [
        (_truncated, "cannot be read"),
        (_random_bytes, "cannot be read"),
        (_foreign_dict, "not a mama-monai checkpoint"),
        (_wrong_num_slots, r"does not match its network_def.*shape mismatch \['memory\.slots'\]"),
        (_unknown_network, "cannot be built"),
        (_newer_format, "Upgrade mama-monai"),
    ],
)
def test_damaged_or_foreign_file_is_refused_naming_it(saved, tmp_path, damage, message):
    bad = tmp_path / "bad_model.pt"
    damage(bad, saved[0])
    with pytest.raises(CheckpointError, match=_match(bad) + ".*" + message):
        load_model(bad)


def test_missing_file_is_refused_naming_it(tmp_path):
    with pytest.raises(CheckpointError, match=_match(tmp_path / "nope.pt") + " does not exist"):
        load_model(tmp_path / "nope.pt")


def test_pickled_objects_are_never_unpickled(saved, tmp_path):
    marker = tmp_path / "code_ran"
    payload = torch.load(saved[0], weights_only=True)
    payload["extra"] = _MakesDirectory(marker)
    bad = tmp_path / "malicious.pt"
    torch.save(payload, bad)
    with pytest.raises(CheckpointError, match=_match(bad) + ".*cannot be read"):
        read_checkpoint(bad)
    with pytest.raises(CheckpointError, match=_match(bad)):
        load_model(bad)
    assert not marker.exists()
    torch.load(bad, weights_only=False)  # the file really carries code: a full unpickle runs it
    assert marker.is_dir()


@pytest.mark.parametrize(
    "config, where",
    [
        ({**CONFIG, "scoring": {**CONFIG["scoring"], "callback": object()}}, r"config\.scoring\.callback .*object"),
        (
            {**CONFIG, "preprocessing": {**CONFIG["preprocessing"], "spatial_size": [32, np.ones(2)]}},
            r"config\.preprocessing\.spatial_size\[1\] .*ndarray",
        ),
    ],
)
def test_save_refuses_values_that_are_not_plain_data_naming_the_key(tmp_path, config, where):
    with pytest.raises(ValueError, match=where):
        save_model(tmp_path / "model.pt", _network(), config, THRESHOLD)
    assert list(tmp_path.iterdir()) == []
