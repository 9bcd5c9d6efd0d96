"""``mama-monai export``: the ONNX file computes what the model file's network computes.

The comparison is made here, with onnxruntime on a real CT slice, not taken from the number the
exporter reports; the file appears only when the export and its check succeed, and an existing
file is not replaced without ``--overwrite``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mama_monai.cli import main
from mama_monai.engines import load_model
from tests.real_slices import lung_window_slice

ort = pytest.importorskip("onnxruntime")


def test_exported_onnx_matches_the_networks_output_on_a_real_slice(files, tmp_path, capsys):
    out = tmp_path / "onnx" / "model.onnx"
    assert main(["export", "--model", str(files["model"]), "--output", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    x = lung_window_slice(files["crop"], 1)
    assert x.std() > 0.1  # anatomy, not a flat image
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x})[0]
    network, _ = load_model(files["model"], "cpu")
    with torch.no_grad():
        expected = network(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.onnx"]  # no temporary left


def test_an_existing_onnx_file_is_kept_without_overwrite(files, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"earlier export")
    assert main(["export", "--model", str(files["model"]), "--output", str(out)]) != 0
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"earlier export"
    assert main(["export", "--model", str(files["model"]), "--output", str(out), "--overwrite"]) == 0
    assert out.read_bytes() != b"earlier export"


def test_a_failed_check_leaves_no_file_and_replaces_nothing(files, tmp_path, capsys, monkeypatch):
    import mama_monai.workflows.export as export

    monkeypatch.setattr(export, "_max_difference", lambda *args: 0.5)  # onnxruntime disagrees with PyTorch
    out = tmp_path / "model.onnx"
    out.write_bytes(b"earlier export")
    assert main(["export", "--model", str(files["model"]), "--output", str(out), "--overwrite"]) != 0
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("mama-monai export: ") and "differs from PyTorch by 0.5" in last
    assert out.read_bytes() == b"earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
