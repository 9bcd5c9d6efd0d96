"""The inference bundle's components and runner read a model file once per version of it."""

from __future__ import annotations

import os

import torch

import mama_monai.engines.model_spec as model_spec
from mama_monai.workflows import bundle
from mama_monai.workflows.bundle_components import ModelPostprocessing, model_network
from tests.model_files import tiny_model_file


def _counting(monkeypatch) -> list[str]:
    reads: list[str] = []
    real = model_spec.load_model_spec

    def load(path, device="cpu"):
        reads.append(str(path))
        return real(path, device)

    monkeypatch.setattr(model_spec, "load_model_spec", load)
    bundle._read_model_file.cache_clear()
    return reads


def test_network_def_postprocessing_and_the_runner_check_share_one_read(monkeypatch, tmp_path):
    reads = _counting(monkeypatch)
    path = tiny_model_file(tmp_path / "model.pt")
    network = model_network(str(path))
    image = torch.rand(1, 32, 32, 3)
    with torch.no_grad():
        pred = torch.stack([network(image[None, ..., k])[0] for k in range(3)], dim=-1)
    scores = ModelPostprocessing(str(path))({"image": image, "pred": pred})["slice_scores"]
    bundle._load_checkpoint(tmp_path / "." / "model.pt", "cpu")  # another spelling of the same file
    assert reads == [os.path.realpath(path)] and scores.shape == (3,)

    # each caller owns its network: moving or zeroing one leaves the next caller's weights intact
    with torch.no_grad():
        for p in network.parameters():
            p.zero_()
    again = model_network(str(path))
    assert any(p.abs().sum() > 0 for p in again.parameters()) and len(reads) == 1


def test_a_rewritten_model_file_is_read_again(monkeypatch, tmp_path):
    reads = _counting(monkeypatch)
    path = tiny_model_file(tmp_path / "model.pt", threshold=0.05)
    assert bundle._load_checkpoint(path, "cpu")[1].threshold == 0.05
    tiny_model_file(path, threshold=0.25)
    os.utime(path, ns=(0, 123456789))  # a new modification time even on a coarse-clock file system
    assert bundle._load_checkpoint(path, "cpu")[1].threshold == 0.25 and len(reads) == 2
