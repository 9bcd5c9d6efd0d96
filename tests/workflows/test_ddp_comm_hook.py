"""``training#ddp_comm_hook``: PyTorch's bf16 gradient compression hook on DDP, 2 gloo CPU processes.

Each process trains a tiny MAMA Net (``mamanet_compact`` at test size) wrapped as the workflows
wrap it (``DetailedForward`` inside ``DistributedDataParallel``) on its own random batches, with
``register_comm_hook(model, "bf16")``. The test checks that training runs, that both replicas end
with identical parameters, and that the hook was really used: the averaged gradients are exactly
representable in bfloat16 (a float32 all-reduce leaves them in full float32).
"""

from __future__ import annotations

import ast
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from mama_monai.engines import DetailedForward
from mama_monai.losses import ReconstructionLoss
from mama_monai.workflows.config import workflow_config
from mama_monai.workflows.distributed import comm_hook, register_comm_hook

STEPS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_mamanet(overrides: list[str]) -> nn.Module:
    pairs = dict(zip(overrides[::2], overrides[1::2]))
    parser = workflow_config("mamanet_compact", overrides={k.lstrip("-"): ast.literal_eval(v) for k, v in pairs.items()})
    return parser.get_parsed_content("network_def", lazy=False)


def _train(rank: int, world_size: int, port: int, overrides: list[str], out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        torch.manual_seed(0)  # same initial weights on both ranks (DDP also broadcasts rank 0's)
        model = nn.parallel.DistributedDataParallel(DetailedForward(_tiny_mamanet(overrides)))
        register_comm_hook(model, "bf16")
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = ReconstructionLoss()
        initial = torch.cat([p.detach().flatten() for p in model.parameters()]).clone()
        generator = torch.Generator().manual_seed(100 + rank)  # each rank its own data
        losses, bf16_exact = [], []
        model.train()
        for _ in range(STEPS):
            x = torch.rand(2, 1, 16, 16, generator=generator)
            optimizer.zero_grad()
            reconstruction, memory_loss, _ = model(x)
            loss = loss_fn(reconstruction, x, memory_loss)
            loss.backward()
            grads = torch.cat([p.grad.flatten() for p in model.parameters()])
            bf16_exact.append(bool(torch.equal(grads, grads.bfloat16().float())))
            optimizer.step()
            losses.append(float(loss))
        params = torch.cat([p.detach().flatten() for p in model.parameters()])
        torch.save({"losses": losses, "bf16_exact": bf16_exact, "initial": initial, "params": params}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_bf16_comm_hook_two_gloo_processes_train_and_stay_identical(tmp_path, tiny):
    mp.spawn(_train, args=(2, _free_port(), tiny.mamanet, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for r in ranks:
        assert len(r["losses"]) == STEPS and all(torch.isfinite(torch.tensor(r["losses"])))
        assert all(r["bf16_exact"])  # the gradients went through the bf16 all-reduce
        assert not torch.equal(r["initial"], r["params"])  # it trained
    assert ranks[0]["losses"] != ranks[1]["losses"]  # on different data
    assert torch.equal(ranks[0]["params"], ranks[1]["params"])  # yet the replicas stayed identical


def test_comm_hook_names():
    assert comm_hook(None) is None
    assert comm_hook("bf16") is torch.distributed.algorithms.ddp_comm_hooks.default_hooks.bf16_compress_hook
    with pytest.raises(ValueError, match="ddp_comm_hook"):
        comm_hook("fp8")
    plain = nn.Linear(2, 2)
    register_comm_hook(plain, "bf16")  # one process: nothing to register, the name is still checked
    register_comm_hook(plain, None)
    with pytest.raises(ValueError, match="ddp_comm_hook"):
        register_comm_hook(plain, "bf17")
