"""The speed levers (runtime section) compute what the plain eager network computes.

Tolerances: channels-last reorders the convolutions' sums (float32: measured ~1e-7);
``torch.compile`` fuses and reorders element-wise work (float32: measured ~1e-6). Both are
asserted at rtol 1e-4 / atol 1e-5 on outputs, loss and every gradient.
"""

from __future__ import annotations

import copy

import pytest
import torch

from mama_monai.engines import Acceleration, DetailedForward, unwrap
from mama_monai.losses import ReconstructionLoss
from mama_monai.networks import MAMANet, MultiScaleAttentionBlock
from mama_monai.workflows.splits import prepare_splits
from mama_monai.workflows.config import workflow_config
from mama_monai.workflows.distributed import DistributedContext
from mama_monai.workflows.training import train_model

TOL = {"rtol": 1e-4, "atol": 1e-5}


def _net(memory_mode: str = "local") -> MAMANet:
    torch.manual_seed(0)
    net = MAMANet(
        2, 1, channels=(8, 16), memory_mode=memory_mode, img_size=(24, 20) if memory_mode == "global" else None,
        num_slots=16, block_args={"head_dim": 8, "context_size": 8},
    )  # fmt: skip
    with torch.no_grad():  # open the zero-initialised residual attentions so they count
        for name, p in net.named_parameters():
            if name.endswith("gamma"):
                p.fill_(0.5)
    return net


def _images() -> torch.Tensor:
    # smooth structure, like a slice, not white noise
    y, x = torch.meshgrid(torch.linspace(-1, 1, 24), torch.linspace(-1, 1, 20), indexing="ij")
    base = torch.exp(-((x / 0.6) ** 2 + (y / 0.4) ** 2))
    return torch.stack([base * s + 0.05 * torch.randn(24, 20, generator=torch.Generator().manual_seed(i)) for i, s in enumerate((1.0, 0.7, 0.4))])[:, None]


def _train_step(net, x, memory_format=None):
    model = DetailedForward(net)
    inputs = x if memory_format is None else x.contiguous(memory_format=memory_format)
    net.zero_grad(set_to_none=True)
    torch.manual_seed(1)  # the hash memory's first training call draws its slots from the batch
    recon, memory_loss, _ = model(inputs)
    loss = ReconstructionLoss()(recon, x, memory_loss)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("memory_mode", ["local", "global"])
def test_channels_last_matches_channels_first(memory_mode):
    x = _images()
    ref = _net(memory_mode)
    fast = Acceleration(channels_last=True).prepare_network(copy.deepcopy(ref))
    assert fast.encoder[0].resample.conv.weight.is_contiguous(memory_format=torch.channels_last)
    fmt = Acceleration(channels_last=True).memory_format(2)
    ref.eval(), fast.eval()
    with torch.no_grad():
        torch.testing.assert_close(fast(x.contiguous(memory_format=fmt)), ref(x), **TOL)
    ref.train(), fast.train()
    loss_ref, grads_ref = _train_step(ref, x)
    loss_fast, grads_fast = _train_step(fast, x, fmt)
    torch.testing.assert_close(loss_fast, loss_ref, **TOL)
    assert grads_fast.keys() == grads_ref.keys()
    for name in grads_ref:
        torch.testing.assert_close(grads_fast[name], grads_ref[name], **TOL, msg=lambda m, name=name: f"{name}: {m}")


def test_compiled_network_matches_eager(monkeypatch):
    # Dynamo capture + AOT autograd (graph breaks, the hash memory's cache under guards, the
    # backward graph) with the eager backend: Inductor's C++ code generation takes minutes on a
    # 2-core CPU. benchmarks/networks.py compares the Inductor-compiled paper model on the GPU.
    import functools

    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    torch._dynamo.reset()
    x = _images()
    ref = _net("local")
    fast = copy.deepcopy(ref)
    compiled = Acceleration(compile=True).compiled(fast)
    assert unwrap(compiled) is fast
    ref.eval(), compiled.eval()
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), ref(x), **TOL)
    ref.train(), compiled.train()
    loss_ref, grads_ref = _train_step(ref, x)
    model = Acceleration(compile=True).compiled(DetailedForward(fast))
    fast.zero_grad(set_to_none=True)
    torch.manual_seed(1)  # as _train_step: the same slots drawn from the batch
    recon, memory_loss, _ = model(x)
    loss = ReconstructionLoss()(recon, x, memory_loss)
    loss.backward()
    torch.testing.assert_close(loss.detach(), loss_ref, **TOL)
    for name, p in fast.named_parameters():
        if name in grads_ref:
            torch.testing.assert_close(p.grad, grads_ref[name], **TOL, msg=lambda m, name=name: f"{name}: {m}")
    # The compiled eval pass cannot check tensor versions, so its slot codes are refreshed by a
    # training-mode call (before any optimizer step) and by load_state_dict. Flipping the slots
    # makes stale codes pick visibly different slots.
    compiled.train()
    with torch.no_grad():
        compiled(x)
        fast.memory.slots.copy_(fast.memory.slots.flip(0))
    ref.load_state_dict(fast.state_dict())
    ref.eval(), compiled.eval()
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), ref(x), **TOL)
        state = {k: v.clone() for k, v in fast.state_dict().items()}
        state["memory.slots"] = state["memory.slots"].flip(0)
        fast.load_state_dict(state)
        ref.load_state_dict(state)
        torch.testing.assert_close(compiled(x), ref(x), **TOL)


def test_fused_adam_takes_the_same_steps():
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(50, 7)) for _ in range(2)]
    twins = [torch.nn.Parameter(p.detach().clone()) for p in params]
    plain = Acceleration().adam(params, lr=1e-2)
    fused = Acceleration(fused_adam=True).adam(twins, lr=1e-2)
    assert fused.defaults["fused"] and not plain.defaults["fused"]
    for step in range(5):
        for opt, ps in ((plain, params), (fused, twins)):
            opt.zero_grad()
            sum(((p - step) ** 2).sum() for p in ps).backward()
            opt.step()
    for a, b in zip(params, twins):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_from_config_resolves_auto_and_refuses_bad_values():
    cpu = Acceleration.from_config({"channels_last": "auto", "fused_adam": "auto"}, "cpu")
    assert cpu == Acceleration(channels_last=False, compile=False, fused_adam=False)
    cuda = Acceleration.from_config({"channels_last": "auto", "compile": True, "compile_mode": "reduce-overhead"}, "cuda")
    assert cuda == Acceleration(channels_last=True, compile=True, compile_mode="reduce-overhead", fused_adam=True)
    assert Acceleration.from_config(None, "cpu") == Acceleration()
    with pytest.raises(ValueError, match=r"runtime#channels_last must be 'auto', true or false, got 'yes'"):
        Acceleration.from_config({"channels_last": "yes"}, "cpu")
    with pytest.raises(ValueError, match=r"runtime#compile must be true or false, got 'auto'"):
        Acceleration.from_config({"compile": "auto"}, "cpu")
    with pytest.raises(ValueError, match=r"runtime#compile_mode must be one of .*got 'fast'"):
        Acceleration.from_config({"compile_mode": "fast"}, "cpu")
    with pytest.raises(ValueError, match=r"runtime has no key\(s\) \['cuda_graphs'\]"):
        Acceleration.from_config({"cuda_graphs": True}, "cpu")


def test_train_model_hands_channels_last_inputs_to_the_network(tiny, tmp_path):
    overrides = dict(tiny.overrides)
    overrides.update(
        {
            "network_def#channels": [8, 16, 16],
            "network_def#decoder_channels": [16, 8],
            "network_def#num_slots": 16,
            "network_def#block_args#head_dim": 8,
            "training#iterations": 10,
            "runtime#channels_last": True,
            "runtime#fused_adam": True,
        }
    )
    parser = workflow_config("mamanet_compact", overrides=overrides)
    splits = prepare_splits(parser)
    seen = []  # (training?, every multi-channel block input channels-last?, a 3x3 conv weight channels-last?)
    original = MultiScaleAttentionBlock.forward

    def spy(self, x, output_size=None):
        if x.shape[1] > 1:
            seen.append((self.training, x.is_contiguous(memory_format=torch.channels_last), self.resample.conv.weight.is_contiguous(memory_format=torch.channels_last)))
        return original(self, x, output_size)

    MultiScaleAttentionBlock.forward = spy
    try:
        result = train_model(parser, splits["train"], splits["val"], tmp_path, DistributedContext(), progress=False)
    finally:
        MultiScaleAttentionBlock.forward = original
    assert result.iterations == 10 and (tmp_path / "model.pt").is_file()
    assert {training for training, _, _ in seen} == {True, False}  # training and validation both went through
    assert all(inputs_cl and weights_cl for _, inputs_cl, weights_cl in seen)
