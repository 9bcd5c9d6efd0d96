"""The process's random number generators as a checkpointable object, so that a resumed run is exact.

ignite's checkpoints hold the network, the optimizer and the engine's counters, but no random
state: after ``--resume`` the loader's shuffle, the hash memory's slot restarts and every other
draw restarted from the seed, and the resumed run diverged from the one that was interrupted
(measured: weights differed by up to 6e-3 after 10 iterations of the tiny MAMA Net). Stored
beside them as ``rng``, :class:`RandomState` captures torch's CPU generator (and CUDA's where
CUDA is initialised), NumPy's legacy global generator and Python's ``random`` at the moment the
checkpoint is written (after the validation of that block) and puts them back when the
checkpoint is loaded. Plain tensors, ints and lists only: it loads with ``weights_only=True``.

A block of ``val_interval`` iterations rarely ends where a pass over the training slices does,
so the loader's place inside its shuffled pass must come back too: :class:`ResumableShuffle`
(the training loader's sampler) draws each pass's order from its own seed and the pass number,
and its ``state_dict`` is the pass and the position in it.

Under ``torchrun`` the checkpoint is written by rank 0, so every rank gets rank 0's state back
(the ranks are seeded alike; their draws that differ, if any, are not restored), and the
training loader is PyTorch's ``DistributedSampler``, whose place inside a pass is NOT restored:
a resumed distributed run starts a new pass.

Example::

    >>> state = RandomState().state_dict()
    >>> a = torch.rand(2)
    >>> RandomState().load_state_dict(state)
    >>> torch.equal(torch.rand(2), a)
    True
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ["RandomState", "ResumableShuffle"]


class RandomState:
    """``state_dict()`` / ``load_state_dict()`` of the global torch, NumPy and Python generators."""

    def state_dict(self) -> dict[str, Any]:
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        version, internal, gauss_next = random.getstate()
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
            "python": {"version": int(version), "internal": list(internal), "gauss_next": gauss_next},
        }  # fmt: skip
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"].cpu())
        n = state["numpy"]
        np.random.set_state((n["kind"], n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
        p = state["python"]
        random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
        cuda = state.get("cuda")
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


class ResumableShuffle(torch.utils.data.Sampler):
    """A random order of ``range(n)`` per pass, and where the current pass stands, as a ``state_dict``.

    Pass ``p`` is ``torch.randperm(n)`` drawn from a generator seeded with ``seed + p``, so the
    order depends on nothing else; the position counts the indices handed out (the loader has no
    worker processes: an index is handed out when its batch is built). Restored from a
    checkpoint, the next iterator continues the interrupted pass at that position.

    Example::

        >>> sampler = ResumableShuffle(4, seed=0)
        >>> it = iter(sampler); first = [next(it), next(it)]
        >>> rest = list(ResumableShuffle.restored(4, 0, sampler.state_dict()))
        >>> sorted(first + rest)
        [0, 1, 2, 3]
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed = int(n), int(seed)
        self.passes, self.position = 0, 0

    @classmethod
    def restored(cls, n: int, seed: int, state: dict[str, int]) -> "ResumableShuffle":
        sampler = cls(n, seed)
        sampler.load_state_dict(state)
        return sampler

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.passes)).tolist()
        while self.position < self.n:
            self.position += 1
            yield order[self.position - 1]
        self.passes, self.position = self.passes + 1, 0

    def state_dict(self) -> dict[str, int]:
        return {"passes": self.passes, "position": self.position, "n": self.n, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if (state["n"], state["seed"]) != (self.n, self.seed):
            raise ValueError(
                f"the checkpoint's training order is for {state['n']} slices (seed {state['seed']}), "
                f"this run has {self.n} (seed {self.seed}): resume with the data and seed of the interrupted run."
            )
        self.passes, self.position = int(state["passes"]), int(state["position"])
