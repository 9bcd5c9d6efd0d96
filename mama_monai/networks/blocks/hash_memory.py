"""Hash-addressed memory (MAMA Net, Sec. III-C, Eq. 5-9)."""

from __future__ import annotations

from typing import List

import torch
import torch.nn as nn

from mama_monai.networks.checks import check_choice, check_positive_int
from mama_monai.networks.outputs import MemoryReadout

__all__ = ["HashMemory"]


class HashMemory(nn.Module):
    """``N`` learnable slots addressed by the Hamming distance between binary hash codes.

    Paper (Eq. 5-9): ``h(m) = 1/2 (sgn(sigmoid(fc(m)) - 1/2) + 1)``, i.e. bit ``b`` is set iff
    ``fc(m)_b > 0``; the distance between a query and a slot is the Hamming distance of their
    ``hash_bits``-bit codes; *hard* addressing reads the single nearest slot (the paper's choice and
    the default), *soft* addressing a softmax over the ``top_k`` nearest.

    ``sgn`` has no gradient, so training uses decisions the paper leaves open:

    - **relaxed distance**: with bit probabilities ``p = sigmoid(fc(.))``, the expected Hamming
      distance ``sum_b p_q (1 - p_m) + (1 - p_q) p_m`` is differentiable in the query, the slots and
      the hash layer;
    - **straight-through hard choice**: the forward pass reads exactly the slot with the smallest
      true Hamming distance; the backward pass uses the softmax of the negative relaxed distances
      (temperature ``temperature``), so the hash layer learns which slots help reconstruction;
    - **VQ terms** (``MemoryReadout.loss``): ``||sg(z) - read||^2 + commitment_weight *
      ||z - sg(read)||^2`` pull the slots that are read towards their queries (codebook) and keep the
      queries near the memory (commitment).

    At initialisation the hash layer is a random projection, so the codes are SimHash codes and
    Hamming distance tracks the angle between features.

    Keeping every slot in use (our decisions; the first release's hard memory read 14-59 of 256
    slots, DESIGN.md §8):

    - **data-dependent initialisation** (``init_from_data``, default True): the first training
      call sets the slots to randomly chosen queries of its batch (with a little noise where the
      batch has fewer queries than slots), the usual k-means-style start of a VQ codebook, so
      that every slot starts where the encoder's features are instead of in random noise that no
      query is near. A loaded model is never re-initialised (the ``initialized`` buffer is saved).
    - **dead-slot restarts** (``restart_every``, default 100 training calls; 0 = off): a slot read
      by no query since the last restart is moved onto a randomly chosen query of the current
      batch. Under ``torchrun`` the read counts are summed over processes and rank 0's choice is
      broadcast, so the replicas stay identical.

    In eval mode the ``{-1, +1}`` codes of all slots are computed once, cached in ``slot_codes`` and
    recomputed when the slots or the hash layer change (eager mode checks the tensors' version
    counters; a scripted or ``torch.compile``-d module recomputes after every training-mode call,
    ``load_state_dict`` or :meth:`refresh_codes`). Hamming distances of all queries to all slots come from one matrix
    product of ``{-1, +1}`` codes: ``d = (bits - c_q . c_m) / 2``, computed in float32.

    Args:
        num_slots: number of memory slots N (paper: 2000; 3000 for X-ray).
        feature_dim: size F of one slot and one query.
        hash_bits: code length F' (paper: 128). Defaults to 128.
        addressing: ``"hard"`` (default) or ``"soft"``.
        top_k: slots mixed by soft addressing. Defaults to 8.
        temperature: softmax temperature over distances in bits. Defaults to 1.0.
        commitment_weight: weight of the commitment term. Defaults to 0.25.
        init_from_data: initialise the slots from the first training batch's queries. Defaults to True.
        restart_every: move slots unread for this many training calls onto current queries;
            0 disables restarts. Defaults to 100.

    Shapes:
        query ``(Q, F)`` -> :class:`MemoryReadout` with ``output (Q, F)``, ``indices (Q,)``,
        ``weights (Q, N)``.

    Example::

        >>> memory = HashMemory(num_slots=100, feature_dim=64).eval()
        >>> readout = memory(torch.randn(5, 64))
        >>> readout.output.shape, readout.indices.shape
        (torch.Size([5, 64]), torch.Size([5]))
    """

    def __init__(
        self,
        num_slots: int,
        feature_dim: int,
        hash_bits: int = 128,
        addressing: str = "hard",
        top_k: int = 8,
        temperature: float = 1.0,
        commitment_weight: float = 0.25,
        init_from_data: bool = True,
        restart_every: int = 100,
    ) -> None:
        super().__init__()
        check_positive_int("num_slots", num_slots)
        check_positive_int("feature_dim", feature_dim)
        check_positive_int("hash_bits", hash_bits)
        check_choice("addressing", addressing, ("hard", "soft"))
        check_positive_int("top_k", top_k)
        if addressing == "soft" and top_k > num_slots:
            raise ValueError(f"top_k must be <= num_slots ({num_slots}) for soft addressing, got {top_k}.")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}.")
        if not commitment_weight >= 0:
            raise ValueError(f"commitment_weight must be >= 0, got {commitment_weight!r}.")
        if isinstance(restart_every, bool) or not isinstance(restart_every, int) or restart_every < 0:
            raise ValueError(f"restart_every must be an int >= 0 (training calls; 0 = no restarts), got {restart_every!r}.")
        self.num_slots = num_slots
        self.feature_dim = feature_dim
        self.hash_bits = hash_bits
        self.hard = addressing == "hard"
        self.top_k = top_k
        self.temperature = float(temperature)
        self.commitment_weight = float(commitment_weight)
        self.slots = nn.Parameter(torch.randn(num_slots, feature_dim))
        self.hash = nn.Linear(feature_dim, hash_bits)
        self.init_from_data = bool(init_from_data)
        self.restart_every = restart_every
        # 1 once the slots hold data (trained, loaded or initialised from a batch); saved with the model
        self.register_buffer("initialized", torch.tensor(0 if init_from_data else 1, dtype=torch.uint8))
        # reads per slot since the last restart and training calls since then (not saved: a resumed
        # run starts a fresh count, which only delays the next restart)
        self.register_buffer("reads", torch.zeros(num_slots), persistent=False)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long), persistent=False)
        self.register_buffer("slot_codes", torch.zeros(num_slots, hash_bits), persistent=False)
        self.codes_valid: bool = False
        self._codes_key: List[int] = []

    # ----------------------------------------------------------------- codes and distances
    def codes(self, features: torch.Tensor) -> torch.Tensor:
        """``{-1, +1}`` codes ``(Q, hash_bits)`` of features ``(Q, F)``: ``+1`` where the paper's bit is 1."""
        logits = self.hash(features).float()
        return torch.where(logits > 0, torch.ones_like(logits), -torch.ones_like(logits))

    def binary_codes(self, features: torch.Tensor) -> torch.Tensor:
        """The paper's ``{0, 1}`` codes ``h`` (uint8, ``(Q, hash_bits)``)."""
        return (self.hash(features) > 0).to(torch.uint8)

    def hamming(self, query_codes: torch.Tensor, slot_codes: torch.Tensor) -> torch.Tensor:
        """Hamming distances ``(Q, N)`` between ``{-1, +1}`` codes, from one float32 matrix product."""
        return 0.5 * (self.hash_bits - query_codes.float() @ slot_codes.float().t())

    def refresh_codes(self) -> None:
        """Recompute the cached codes of all slots now."""
        with torch.no_grad():
            self.slot_codes = self.codes(self.slots)
        self.codes_valid = True
        if not torch.jit.is_scripting():
            self._codes_key = self._weights_key()

    @torch.jit.unused
    def _weights_key(self) -> List[int]:
        tensors = (self.slots, self.hash.weight, self.hash.bias)
        return [t._version for t in tensors] + [t.data_ptr() for t in tensors]

    @torch.jit.unused
    def _weights_changed(self) -> bool:
        if torch.compiler.is_compiling():
            # data pointers and version counters cannot be traced; a compiled module relies on
            # ``codes_valid``, which every training-mode call and load_state_dict reset
            return False
        return self._codes_key != self._weights_key()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        self.codes_valid = False
        # model files written before data-dependent initialisation existed hold trained slots
        state_dict.setdefault(prefix + "initialized", torch.tensor(1, dtype=torch.uint8))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _cached_slot_codes(self) -> torch.Tensor:
        stale = not self.codes_valid
        if not torch.jit.is_scripting():
            stale = stale or self._weights_changed()
        if stale:
            self.refresh_codes()
        return self.slot_codes

    # ----------------------------------------------------------------- addressing
    def _top_k_weights(self, distances: torch.Tensor, hamming: torch.Tensor) -> torch.Tensor:
        """Softmax of ``-distances / T`` over the ``top_k`` smallest ``hamming``, zero elsewhere."""
        idx = torch.topk(hamming, self.top_k, dim=1, largest=False).indices
        w = torch.softmax(-distances.gather(1, idx) / self.temperature, dim=1)
        return torch.zeros_like(distances).scatter(1, idx, w)

    def forward(self, query: torch.Tensor) -> MemoryReadout:
        if query.dim() != 2 or query.shape[1] != self.feature_dim:
            raise ValueError(f"query must have shape (Q, {self.feature_dim}), got {list(query.shape)}.")
        if self.training:
            return self._train_read(query)
        return self._eval_read(query)

    @torch.jit.unused
    def _broadcast_slots(self) -> None:
        """Rank 0's slots to every process (no-op outside ``torch.distributed``)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.broadcast(self.slots.data, src=0)

    @torch.jit.unused
    def _sample_queries(self, query: torch.Tensor, count: int) -> torch.Tensor:
        """``count`` randomly chosen rows of ``query`` (detached); with noise of 1 % of the queries'
        spread where rows repeat."""
        q = query.detach().float()
        if count <= q.shape[0]:
            return q[torch.randperm(q.shape[0], device=q.device)[:count]]
        picked = q[torch.randint(0, q.shape[0], (count,), device=q.device)]
        return picked + 0.01 * q.std().clamp_min(1e-6) * torch.randn_like(picked)

    @torch.jit.unused
    def _initialise(self, query: torch.Tensor) -> None:
        with torch.no_grad():
            self.slots.data.copy_(self._sample_queries(query, self.num_slots).to(self.slots.dtype))
            self._broadcast_slots()
            self.initialized.fill_(1)

    @torch.jit.unused
    def _restart_dead(self, query: torch.Tensor, indices: torch.Tensor) -> int:
        """Count this call's reads; every ``restart_every`` calls move unread slots onto queries.
        Returns the number of slots moved."""
        with torch.no_grad():
            self.reads.index_add_(0, indices, torch.ones_like(indices, dtype=self.reads.dtype))
            self.calls += 1
            if int(self.calls) < self.restart_every:
                return 0
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.all_reduce(self.reads)
            dead = torch.nonzero(self.reads == 0).flatten()
            if dead.numel():
                self.slots.data[dead] = self._sample_queries(query, int(dead.numel())).to(self.slots.dtype)
                self._broadcast_slots()
            self.reads.zero_()
            self.calls.zero_()
            return int(dead.numel())

    def _train_read(self, query: torch.Tensor) -> MemoryReadout:
        self.codes_valid = False
        if not torch.jit.is_scripting() and self.init_from_data and not bool(self.initialized):
            self._initialise(query)
        logits_q = self.hash(query).float()
        logits_m = self.hash(self.slots).float()
        with torch.no_grad():
            hamming = self.hamming(torch.sign(logits_q), torch.sign(logits_m))
        p_q = torch.sigmoid(logits_q)
        p_m = torch.sigmoid(logits_m)
        relaxed = p_q.sum(1, keepdim=True) + p_m.sum(1).unsqueeze(0) - 2.0 * (p_q @ p_m.t())
        if self.hard:
            indices = torch.argmin(hamming, dim=1)
            soft = torch.softmax(-relaxed / self.temperature, dim=1)
            hard = nn.functional.one_hot(indices, self.num_slots).to(soft.dtype)
            weights = hard + soft - soft.detach()
        else:
            weights = self._top_k_weights(relaxed, hamming)
            indices = torch.argmax(weights.detach(), dim=1)
        slots = self.slots
        output = weights.to(slots.dtype) @ slots
        # the slots' values as read (no gradient through the addressing): for hard addressing the
        # selected rows themselves, exact and without a second (Q x N) @ (N x F) product
        read = slots.index_select(0, indices) if self.hard else weights.detach().to(slots.dtype) @ slots
        codebook = nn.functional.mse_loss(read.float(), query.detach().float())
        commitment = nn.functional.mse_loss(query.float(), read.detach().float())
        if not torch.jit.is_scripting() and self.restart_every > 0:
            self._restart_dead(query, indices)
        return MemoryReadout(output, indices, weights.detach(), codebook + self.commitment_weight * commitment)

    def _eval_read(self, query: torch.Tensor) -> MemoryReadout:
        hamming = self.hamming(self.codes(query), self._cached_slot_codes())
        if self.hard:
            indices = torch.argmin(hamming, dim=1)
            weights = nn.functional.one_hot(indices, self.num_slots).to(hamming.dtype)
            output = self.slots.index_select(0, indices).to(query.dtype)
        else:
            weights = self._top_k_weights(hamming, hamming)
            indices = torch.argmax(weights, dim=1)
            output = (weights.to(self.slots.dtype) @ self.slots).to(query.dtype)
        return MemoryReadout(output, indices, weights, torch.zeros((), device=query.device))
