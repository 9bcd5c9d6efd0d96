"""verify_metadata (offline schema), verify_net_in_out, ckpt_export -> TorchScript, ONNX vs PyTorch."""

from __future__ import annotations

import json

import pytest
import torch
from monai.bundle import ckpt_export, verify_metadata, verify_net_in_out

from mama_monai.engines import load_model
from mama_monai.workflows.export import ONNX_ATOL, export_onnx
from tests.bundle.conftest import NETWORK, REPO, TINY

CONFIGS = [str(REPO / "configs/train.yaml"), str(REPO / NETWORK)]


def _overrides() -> dict:
    import yaml

    return {k[2:]: yaml.safe_load(v) for k, v in zip(TINY[::2], TINY[1::2])}


def test_verify_metadata_with_shipped_schema():
    verify_metadata(meta_file=str(REPO / "configs/metadata.json"), filepath=str(REPO / "configs/schema/metadata_schema.json"))


def test_shipped_schema_rejects_missing_network_data_format(tmp_path):
    meta = json.loads((REPO / "configs/metadata.json").read_text())
    del meta["network_data_format"]["outputs"]["pred"]["dtype"]
    (tmp_path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="dtype"):
        verify_metadata(meta_file=str(tmp_path / "metadata.json"), filepath=str(REPO / "configs/schema/metadata_schema.json"))


def test_verify_net_in_out_compact_network():
    verify_net_in_out(
        net_id="network_def", meta_file=str(REPO / "configs/metadata.json"), config_file=CONFIGS, device="cpu",
        **{"_meta_#network_data_format#inputs#image#spatial_shape": [32, 32]}, **_overrides(),
    )  # fmt: skip


def test_ckpt_export_torchscript_runs(trained, tmp_path):
    ts = tmp_path / "models" / "model.ts"
    ts.parent.mkdir()
    ckpt_export(
        net_id="network_def", filepath=str(ts), ckpt_file=str(trained / "model.pt"), meta_file=str(REPO / "configs/metadata.json"),
        config_file=CONFIGS, key_in_ckpt="state_dict", bundle_root=str(REPO), **_overrides(),
    )  # fmt: skip
    loaded = torch.jit.load(str(ts))
    network, _ = load_model(trained / "model.pt")
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), network(x), atol=1e-5, rtol=1e-5)


def test_onnx_matches_pytorch(trained, tmp_path):
    import numpy as np
    import onnxruntime as ort

    from mama_monai.data import load_demo_ct
    from tests.real_slices import lung_window_slice

    info = export_onnx(trained / "model.pt", tmp_path / "model.onnx")
    assert info["input_shape"] == [1, 1, 32, 32] and info["opset"] >= 17
    assert info["max_abs_diff"] <= ONNX_ATOL
    # compared here too, not only by the exporter: a real CT slice, lung-windowed, at the model's size
    x = torch.from_numpy(lung_window_slice(load_demo_ct()["image"], 60))
    network, _ = load_model(trained / "model.pt")
    with torch.no_grad():
        expected = network(x).numpy()
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert got.shape == expected.shape and float(np.abs(expected).max()) > 0
    np.testing.assert_allclose(got, expected, atol=ONNX_ATOL, rtol=0)


def test_onnx_export_rejects_old_opset(trained, tmp_path):
    with pytest.raises(ValueError, match=r"opset must be >= 17 .*got 13"):
        export_onnx(trained / "model.pt", tmp_path / "model.onnx", opset=13)


def test_readme_snippet_builds_mamanet_and_hash_memory():
    import re

    from monai.bundle import ConfigParser

    from mama_monai.networks import HashMemory, MAMANet

    text = (REPO / "docs/README.md").read_text()
    snippet = next(block for block in re.findall(r"```yaml\n(.*?)```", text, re.S) if "HashMemory" in block)
    import yaml

    parser = ConfigParser({**yaml.safe_load(snippet), "device": "cpu"})
    network, memory = parser.get_parsed_content("network"), parser.get_parsed_content("memory")
    assert isinstance(network, MAMANet) and isinstance(memory, HashMemory)
    assert network(torch.rand(1, 1, 32, 32)).shape == (1, 1, 32, 32)
    assert memory.eval()(torch.rand(5, 64)).output.shape == (5, 64)
