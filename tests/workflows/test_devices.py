"""One device rule for every entrance (CLI, score, torchrun, bundle)."""

from __future__ import annotations

import pytest
import torch

from mama_monai.workflows.bundle import BundleConfigError
from mama_monai.workflows.bundle import resolve_device as bundle_device
from mama_monai.workflows.devices import resolve_device
from mama_monai.workflows.distributed import init_distributed
from mama_monai.workflows.scoring import score_cases


def test_auto_is_cuda_where_there_is_cuda_else_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cpu") == torch.device("cpu")


def test_cuda_without_cuda_is_refused_alike_everywhere(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    message = "device 'cuda' was asked for, but CUDA is not available on this machine; use --device cpu."
    with pytest.raises(ValueError) as plain:
        resolve_device("cuda")
    with pytest.raises(BundleConfigError) as bundle:
        bundle_device("cuda")
    with pytest.raises(ValueError) as launcher:
        init_distributed("cuda")
    with pytest.raises(ValueError) as scoring:
        score_cases(tmp_path / "missing.pt", ["x.nii.gz"], tmp_path / "out", device="cuda")
    assert str(plain.value) == str(bundle.value) == str(launcher.value) == str(scoring.value) == message


def test_a_name_that_is_no_device_is_named():
    with pytest.raises(ValueError, match=r"device 'gpu' is not a device name \(expected auto, cpu, cuda or cuda:N\)"):
        resolve_device("gpu")
