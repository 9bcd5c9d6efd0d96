"""MemAE's memory: soft addressing with hard shrinkage (Gong et al., ICCV 2019)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from mama_monai.networks.checks import check_choice, check_positive_int
from mama_monai.networks.outputs import MemoryReadout

__all__ = ["MemAEMemory", "SIMILARITIES"]

#: ``"dot"``: ``z . m`` as MemAE's reference code computes it (``F.linear(input, weight)``);
#: ``"cosine"``: the paper's Eq. 4 as printed.
SIMILARITIES = ("dot", "cosine")


class MemAEMemory(nn.Module):
    """Soft addressing over ``N`` slots, sparsified by hard shrinkage (MemAE, Eq. 4-7).

    ``w = softmax(s(z, m_i))`` over the slots; entries below ``shrink_threshold`` are set to zero
    (``relu(w - lambda) * w / (|w - lambda| + eps)``, the reference code's ``hard_shrink_relu``),
    the rest renormalised to sum to 1 (L1); the answer is ``w' M``. The readout's ``loss`` is the
    entropy ``-sum w' log w'`` (mean over queries), which MemAE adds with weight 0.0002.

    Decisions (measured on the first release, where the memory was dead from initialisation):

    - ``similarity="dot"`` (default) follows MemAE's reference code, which addresses by the plain
      dot product ``z . m_i``; the paper prints a cosine similarity. With cosine similarity the
      logits lie in ``[-1, 1]``, so over 2,000 slots every softmax weight is below
      ``e / 2000 = 1.4e-3``, the default threshold ``2.5 / N = 1.25e-3`` removes nearly all of
      them, and the decoder receives zeros. The cosine form stays available.
    - **The largest weight of each query is never shrunk away**: when every weight of a query is
      below the threshold (a near-uniform softmax, e.g. at initialisation) the query still reads
      its best slot instead of nothing. The reference code would output zeros there.
    - Slots start as ``U(-1/sqrt(F), 1/sqrt(F))`` as in the reference code.

    Args:
        num_slots: number of slots N.
        feature_dim: size F of a slot.
        shrink_threshold: lambda; MemAE uses a value in ``[1/N, 3/N]``. Defaults to ``2.5 / N``;
            0 disables shrinkage.
        similarity: ``"dot"`` (default, reference code) or ``"cosine"`` (paper text).

    Shapes:
        query ``(Q, F)`` -> :class:`MemoryReadout` with ``output (Q, F)`` and ``weights (Q, N)``.

    Example::

        >>> memory = MemAEMemory(num_slots=50, feature_dim=16)
        >>> readout = memory(torch.randn(4, 16))
        >>> bool((readout.weights.sum(1) - 1).abs().max() < 1e-5), bool((readout.weights > 0).any(1).all())
        (True, True)
    """

    def __init__(
        self, num_slots: int, feature_dim: int, shrink_threshold: float | None = None, similarity: str = "dot"
    ) -> None:
        super().__init__()
        check_positive_int("num_slots", num_slots)
        check_positive_int("feature_dim", feature_dim)
        check_choice("similarity", similarity, SIMILARITIES)
        shrink_threshold = 2.5 / num_slots if shrink_threshold is None else float(shrink_threshold)
        if not 0 <= shrink_threshold < 1:
            raise ValueError(f"shrink_threshold must be in [0, 1), got {shrink_threshold!r}.")
        self.num_slots = num_slots
        self.feature_dim = feature_dim
        self.shrink_threshold = shrink_threshold
        self.cosine = similarity == "cosine"
        bound = 1.0 / math.sqrt(feature_dim)
        self.slots = nn.Parameter(torch.empty(num_slots, feature_dim).uniform_(-bound, bound))

    def similarities(self, query: torch.Tensor) -> torch.Tensor:
        """Addressing logits ``(Q, N)``."""
        q, m = query.float(), self.slots.float()
        if self.cosine:
            q, m = nn.functional.normalize(q, dim=1), nn.functional.normalize(m, dim=1)
        return q @ m.t()

    def shrink(self, w: torch.Tensor) -> torch.Tensor:
        """Hard shrinkage of softmax weights ``(Q, N)``, keeping each row's largest, L1-renormalised."""
        if self.shrink_threshold <= 0:
            return w
        shifted = w - self.shrink_threshold
        shrunk = nn.functional.relu(shifted) * w / (shifted.abs() + 1e-12)
        best = nn.functional.one_hot(torch.argmax(w, dim=1), self.num_slots).to(torch.bool)
        shrunk = torch.where(best & (shrunk == 0), w, shrunk)
        return shrunk / shrunk.sum(dim=1, keepdim=True).clamp_min(1e-12)

    def forward(self, query: torch.Tensor) -> MemoryReadout:
        if query.dim() != 2 or query.shape[1] != self.feature_dim:
            raise ValueError(f"query must have shape (Q, {self.feature_dim}), got {list(query.shape)}.")
        w = self.shrink(torch.softmax(self.similarities(query), dim=1))
        output = (w @ self.slots.float()).to(query.dtype)
        entropy = -(w * torch.log(w + 1e-12)).sum(dim=1).mean()
        return MemoryReadout(output, torch.argmax(w, dim=1), w, entropy)
