"""Turning a latent code into memory queries and back.

A memory reads ``(Q, F)`` queries. A latent code ``z`` of shape ``(B, C, *spatial)`` becomes
either one query per image (``local=False``: ``F = C * prod(spatial)``, the paper's MAMA Net) or
one query per latent position (``local=True``: ``F = C``, as MemAE does).
"""

from __future__ import annotations

import torch

__all__ = ["latent_to_queries", "queries_to_latent"]


def latent_to_queries(z: torch.Tensor, local: bool) -> torch.Tensor:
    """``(B, C, *spatial)`` -> ``(B, C * prod(spatial))`` or, if ``local``, ``(B * prod(spatial), C)``."""
    b, c = z.shape[0], z.shape[1]
    if not local:
        return z.reshape(b, -1)
    return z.reshape(b, c, -1).transpose(1, 2).reshape(-1, c)


def queries_to_latent(queries: torch.Tensor, like: torch.Tensor, local: bool) -> torch.Tensor:
    """Inverse of :func:`latent_to_queries`, shaped like ``like``."""
    if not local:
        return queries.reshape(like.shape)
    b, c = like.shape[0], like.shape[1]
    return queries.reshape(b, -1, c).transpose(1, 2).reshape(like.shape)
