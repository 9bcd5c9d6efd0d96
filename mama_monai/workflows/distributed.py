"""PyTorch's own distributed engine: ``torchrun`` + ``DistributedDataParallel``, nothing home-made.

Launch any training command under ``torchrun --nproc_per_node=N``; each process reads the
``RANK`` / ``LOCAL_RANK`` / ``WORLD_SIZE`` environment that torchrun sets. NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import ignite.distributed as idist
import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

from mama_monai.workflows.devices import resolve_device

__all__ = ["COMM_HOOKS", "DistributedContext", "comm_hook", "init_distributed", "register_comm_hook"]

#: ``training#ddp_comm_hook`` values: PyTorch's own DDP communication hooks, by name
COMM_HOOKS: dict[str, Callable] = {
    "bf16": default_hooks.bf16_compress_hook,  # all-reduce gradients as bfloat16: half the bytes
}


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: ``rank`` of ``world_size``, its ``device``."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str = "auto") -> DistributedContext:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1), else run alone.

    Args:
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. Under
            torchrun with CUDA each process takes ``cuda:LOCAL_RANK``.
    """
    resolved = resolve_device(device)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext(0, 1, resolved)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if resolved.type == "cuda":
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    # ignite (under MONAI's engines and handlers) sets up its view of the process group lazily, with
    # collectives, on the first idist call; make that call here on every rank, or the one rank that
    # calls it first (rank 0 building its checkpoint handlers) waits forever for the others.
    idist.sync()
    return DistributedContext(dist.get_rank(), dist.get_world_size(), dev)


def comm_hook(name: str | None) -> Callable | None:
    """The DDP communication hook called ``name`` in :data:`COMM_HOOKS`; ``None`` for ``None``."""
    if name is None:
        return None
    if name not in COMM_HOOKS:
        raise ValueError(f"training#ddp_comm_hook must be null or one of {sorted(COMM_HOOKS)}, got {name!r}.")
    return COMM_HOOKS[name]


def register_comm_hook(model: nn.Module, name: str | None) -> None:
    """Register the gradient communication hook ``name`` (``training#ddp_comm_hook``) on ``model``.

    ``None`` keeps DDP's built-in float32 all-reduce. ``"bf16"`` is PyTorch's
    ``bf16_compress_hook``: each gradient bucket is cast to bfloat16, averaged across processes and
    cast back, so every process still applies the same gradient (the replicas stay identical) but
    half the bytes cross the links; the gradients carry bfloat16's 8-bit mantissa. Worth it only
    where the all-reduce is not hidden behind the backward pass (docs/multi_gpu.md). A model that
    is not ``DistributedDataParallel`` (one process: no gradient communication) is left as it is,
    after the name is checked. Call it once, before the first forward pass.
    """
    hook = comm_hook(name)
    if hook is None or not isinstance(model, nn.parallel.DistributedDataParallel):
        return
    if hook is default_hooks.bf16_compress_hook and dist.get_backend(model.process_group) == "gloo":
        # DDP refuses this hook by its name unless CUDA + NCCL >= 2.10 are there (NCCL's bf16
        # support); gloo all-reduces bfloat16 too, so CPU processes (the tests) run the same hook
        # under another name. On CUDA the stock hook goes through DDP's check.
        hook = _bf16_compress_hook_gloo
    model.register_comm_hook(None, hook)  # state None: the default process group


def _bf16_compress_hook_gloo(process_group, bucket):  # no annotations: DDP checks them as objects, these would be strings
    """``bf16_compress_hook(process_group, bucket)`` under a name DDP lets gloo use."""
    return default_hooks.bf16_compress_hook(process_group, bucket)
