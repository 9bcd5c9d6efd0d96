"""torch.compile with its default backend, Inductor (C++ code generated and compiled on CPU),
computes what the eager network computes.

tests/workflows/test_acceleration.py checks the compiled MAMA Net (Dynamo capture, the hash
memory's cache under guards, AOT autograd's backward) with the ``aot_eager`` backend: Inductor
needs minutes to generate and compile the C++ kernels of a MAMA Net on a 2-core CPU (measured
326 s for the tiny one's forward pass on a busy machine). Here Inductor itself compiles the
small convolutional autoencoder through the product's :class:`~mama_monai.engines.Acceleration`
(measured 29 s on the same busy machine, a few seconds idle), so generated code is run and
checked at least once. Skipped only where no C++ compiler is installed.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from mama_monai.engines import Acceleration
from mama_monai.networks import ConvAutoEncoder


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None, reason="Inductor on CPU needs a C++ compiler")
def test_inductor_compiled_autoencoder_matches_eager(monkeypatch):
    import torch._dynamo
    import torch._inductor.compile_fx as inductor

    calls = []
    real = inductor.compile_fx
    monkeypatch.setattr(inductor, "compile_fx", lambda *a, **k: calls.append(1) or real(*a, **k))
    torch._dynamo.reset()
    torch.manual_seed(0)
    net = ConvAutoEncoder(2, 1, channels=(4, 8)).eval()
    y, x = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    images = torch.stack([torch.exp(-((x / s) ** 2 + (y / 0.5) ** 2)) for s in (0.4, 0.7)])[:, None]
    compiled = Acceleration(compile=True).compiled(net)
    with torch.no_grad():
        got = compiled(images)
        expected = net(images)
    assert calls  # Inductor compiled the graph (not an eager fallback)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert not torch.equal(expected, torch.zeros_like(expected))  # a real output, not a trivial one
