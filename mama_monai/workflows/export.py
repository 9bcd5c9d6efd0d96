"""ONNX export of a trained network, checked against PyTorch in onnxruntime.

TorchScript export is MONAI's own: ``python -m monai.bundle ckpt_export network_def
--key_in_ckpt state_dict ...`` (docs/README.md). ONNX goes through PyTorch's ``torch.export``
based exporter (``dynamo=True``, needs ``onnxscript``): the legacy TorchScript-based exporter
fails on the compact network's global attention, whose ``adaptive_avg_pool2d`` of the keys and
values it cannot export ("input size not accessible"). Checked by ``tests/bundle`` on the compact
MAMA Net (hard addressing): ``scaled_dot_product_attention``, adaptive average pooling and the
hash memory's Hamming distances and ``argmin`` export and match PyTorch. The ``topk`` of
``addressing: soft`` is a standard ONNX op but not covered by the tests. The graph has a fixed
input shape (the model file's ``spatial_size``): the networks' argument checks branch on shapes.

Two things differ from the PyTorch module: the NaN/inf check of the input (a data-dependent
``raise``) is switched off before export, so the ONNX graph does not refuse non-finite inputs;
and each :class:`~mama_monai.networks.HashMemory` has its slot codes computed before export and
stored in the graph as a constant (its cache check reads tensor versions and data pointers,
which ``torch.export`` cannot trace). The codes depend on the weights only, fixed after export.

Example:
    >>> info = export_onnx("models/model.pt", "models/model.onnx")  # doctest: +SKIP
    >>> info["max_abs_diff"] <= 1e-4  # doctest: +SKIP
    True
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mama_monai.engines.model_spec import load_model_spec
from mama_monai.networks import HashMemory

__all__ = ["export_onnx", "ONNX_ATOL"]

#: Largest |ONNX - PyTorch| accepted on the check input (float32 on CPU).
ONNX_ATOL = 1e-4


def _constant(codes: torch.Tensor):
    return lambda: codes


def export_onnx(
    model_path: str | os.PathLike,
    output: str | os.PathLike,
    opset: int = 18,
    batch_size: int = 1,
    check: bool = True,
    atol: float = ONNX_ATOL,
    seed: int = 0,
) -> dict[str, Any]:
    """Export the network of a model file to ONNX and compare it with PyTorch in onnxruntime.

    Args:
        model_path: a model file written by training (``model.pt``).
        output: the ``.onnx`` file to write (folders are created), self-contained (the weights
            inside, no ``.data`` file beside it: the networks are far below protobuf's 2 GB). It is written under a
            temporary name and renamed only once exported and checked: a failed export or check
            leaves no file and replaces nothing.
        opset: ONNX opset, >= 17 (default 18, the exporter's native opset; 17 is reached by
            conversion, which fails on ``Pad`` in onnx 1.23).
        batch_size: batch size of the fixed input shape (default 1).
        check: run the exported file in onnxruntime on a random input in [0, 1] and compare with
            the PyTorch network (default True).
        atol: largest accepted absolute difference (default :data:`ONNX_ATOL`).
        seed: seed of the check input (default 0).

    Returns:
        ``{"path", "input_shape", "opset", "max_abs_diff"}`` (``max_abs_diff`` None without check).

    Raises:
        ValueError: ``opset`` < 17, ``batch_size`` < 1, or ONNX and PyTorch differ by more than ``atol``.
        CheckpointError: a missing, corrupted or incompatible model file.
    """
    if int(opset) < 17:
        raise ValueError(f"opset must be >= 17 (scaled_dot_product_attention), got {opset}.")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    network, spec = load_model_spec(model_path, "cpu")
    _prepare_for_export(network)
    shape = (int(batch_size), spec.in_channels, *spec.spatial_size)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.{secrets.token_hex(4)}.tmp")  # renamed once exported and checked
    try:
        with torch.no_grad():
            expected = network(x).numpy()
            torch.onnx.export(
                network, (x,), str(partial), input_names=["image"], output_names=["pred"], opset_version=int(opset),
                dynamo=True, optimize=False, verbose=False, external_data=False,  # one file: weights inside
            )  # fmt: skip
        diff = _max_difference(partial, x, expected) if check else None
        if diff is not None and not diff <= atol:
            raise ValueError(f"ONNX output differs from PyTorch by {diff:.3g} > atol {atol:g} for {str(output)!r}.")
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return {"path": str(output), "input_shape": list(shape), "opset": int(opset), "max_abs_diff": diff}


def _prepare_for_export(network: torch.nn.Module) -> None:
    """Switch off the input's NaN/inf check and freeze each hash memory's slot codes (module docstring)."""
    for module in network.modules():  # the network itself and, in an ensemble, every member
        if hasattr(module, "check_finite"):
            module.check_finite = False  # a data-dependent raise cannot be exported
        if isinstance(module, HashMemory):
            module.refresh_codes()
            module._cached_slot_codes = _constant(module.slot_codes)  # this instance only: no cache check


def _max_difference(onnx_file: Path, x: torch.Tensor, expected: np.ndarray) -> float:
    """Largest |onnxruntime(onnx_file)(x) - expected|."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    return float(np.abs(got - expected).max())
