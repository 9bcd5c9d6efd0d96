"""PyTorch's own distributed engine: ``torchrun`` + ``DistributedDataParallel``, nothing home-made.

Launch any training command under ``torchrun --nproc_per_node=N``; each process reads the
``RANK`` / ``LOCAL_RANK`` / ``WORLD_SIZE`` environment that torchrun sets. NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import ignite.distributed as idist
import torch
import torch.distributed as dist

__all__ = ["DistributedContext", "init_distributed"]


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
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for, but CUDA is not available on this machine; use --device cpu.")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext(0, 1, torch.device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
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
