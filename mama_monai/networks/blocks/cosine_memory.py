"""MemAE's memory: cosine soft addressing with hard shrinkage (Gong et al., ICCV 2019)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from mama_monai.networks.checks import check_positive_int
from mama_monai.networks.outputs import MemoryReadout

__all__ = ["CosineMemory"]


class CosineMemory(nn.Module):
    """Soft addressing by cosine similarity, sparsified by hard shrinkage (MemAE, Eq. 4-7).

    ``w = softmax(cos(z, m_i))`` over the ``N`` slots; ``w' = relu(w - lambda) * w / (|w - lambda| + eps)``
    with ``lambda = shrink_threshold``, renormalised to sum to 1; the answer is ``w' M``. The
    readout's ``loss`` is the entropy ``-sum w' log w'`` (mean over queries), which MemAE adds with
    weight 0.0002.

    Args:
        num_slots: number of slots N.
        feature_dim: size F of a slot.
        shrink_threshold: lambda; MemAE uses a value in ``[1/N, 3/N]``. Defaults to ``2.5 / N``;
            0 disables shrinkage.

    Shapes:
        query ``(Q, F)`` -> :class:`MemoryReadout` with ``output (Q, F)`` and ``weights (Q, N)``.

    Example::

        >>> memory = CosineMemory(num_slots=50, feature_dim=16)
        >>> memory(torch.randn(4, 16)).weights.sum(1)
        tensor([1.0000, 1.0000, 1.0000, 1.0000], grad_fn=<SumBackward1>)
    """

    def __init__(self, num_slots: int, feature_dim: int, shrink_threshold: float | None = None) -> None:
        super().__init__()
        check_positive_int("num_slots", num_slots)
        check_positive_int("feature_dim", feature_dim)
        shrink_threshold = 2.5 / num_slots if shrink_threshold is None else float(shrink_threshold)
        if not 0 <= shrink_threshold < 1:
            raise ValueError(f"shrink_threshold must be in [0, 1), got {shrink_threshold!r}.")
        self.num_slots = num_slots
        self.feature_dim = feature_dim
        self.shrink_threshold = shrink_threshold
        bound = 1.0 / math.sqrt(feature_dim)
        self.slots = nn.Parameter(torch.empty(num_slots, feature_dim).uniform_(-bound, bound))

    def forward(self, query: torch.Tensor) -> MemoryReadout:
        if query.dim() != 2 or query.shape[1] != self.feature_dim:
            raise ValueError(f"query must have shape (Q, {self.feature_dim}), got {list(query.shape)}.")
        cos = nn.functional.normalize(query.float(), dim=1) @ nn.functional.normalize(self.slots.float(), dim=1).t()
        w = torch.softmax(cos, dim=1)
        if self.shrink_threshold > 0:
            shifted = w - self.shrink_threshold
            w = nn.functional.relu(shifted) * w / (shifted.abs() + 1e-12)
            w = w / w.sum(dim=1, keepdim=True).clamp_min(1e-12)
        output = (w @ self.slots.float()).to(query.dtype)
        entropy = -(w * torch.log(w + 1e-12)).sum(dim=1).mean()
        return MemoryReadout(output, torch.argmax(w, dim=1), w, entropy)
