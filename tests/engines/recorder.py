"""A stand-in network for trainer tests: returns zeros and remembers every batch it was given."""

from __future__ import annotations

import torch
import torch.nn as nn


class Recorder(nn.Module):
    """Returns zeros (plus a zero weight, so the optimiser has a parameter) and keeps copies of its inputs."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return x * 0 + self.weight
