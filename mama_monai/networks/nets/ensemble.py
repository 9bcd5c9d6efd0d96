"""An ensemble of reconstruction networks of one architecture: the mean of their reconstructions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from mama_monai.arguments import records_arguments
from mama_monai.networks.nets.autoencoder import ConvAutoEncoder
from mama_monai.networks.nets.mamanet import MAMANet
from mama_monai.networks.nets.memae import MemAE
from mama_monai.networks.outputs import ModelOutput

__all__ = ["ReconstructionEnsemble", "MAX_MEMBERS", "MEMBER_NAMES", "member_class"]

#: the most members a (stored) ensemble may have: a model file cannot ask for thousands of networks
MAX_MEMBERS = 32

#: the networks an ensemble may hold, by the names training stores (``mama_monai.networks.<Name>``)
#: and their short names
_MEMBERS: dict[str, type[nn.Module]] = {
    **{f"mama_monai.networks.{cls.__name__}": cls for cls in (ConvAutoEncoder, MAMANet, MemAE)},
    **{f"mama_monai.networks.nets.{cls.__name__}": cls for cls in (ConvAutoEncoder, MAMANet, MemAE)},
    **{cls.__name__: cls for cls in (ConvAutoEncoder, MAMANet, MemAE)},
}
#: the names training stores, for error messages
MEMBER_NAMES = sorted(k for k in _MEMBERS if k.count(".") == 2)


def member_class(network: str) -> type[nn.Module]:
    """The network class a :class:`ReconstructionEnsemble` member may be, by name.

    Raises:
        ValueError: ``network`` is not one of this package's reconstruction networks.
    """
    if type(network) is not str or network not in _MEMBERS:
        raise ValueError(f"network must name one of {MEMBER_NAMES}, got {network!r}.")
    return _MEMBERS[network]


@records_arguments
class ReconstructionEnsemble(nn.Module):
    """``members`` networks of one architecture, trained from different seeds; ``forward`` returns
    the mean of their reconstructions, so the anomaly map is the squared error against it.

    Decision (ours; not in the paper): one network's detection varies widely with the random seed
    (MAMA Net on the fair LIDC split: image AUROC 0.51-0.88 over five seeds). Averaging the
    reconstructions of K networks is the standard remedy for that variance (deep ensembles); the
    mean reconstruction rather than the mean of the K error maps because it scored as well or
    better in the offline comparison (docs/accuracy.md) and keeps ``forward`` one tensor, so that
    scoring, the bundle and ONNX export treat an ensemble like any network.

    Args:
        network: the members' class: ``"mama_monai.networks.MAMANet"``, ``"...ConvAutoEncoder"``
            or ``"...MemAE"`` (as a model file's ``network_def._target_`` names it).
        network_args: the members' keyword arguments (the ``network_def`` without ``_target_``).
        members: how many networks, 1 to :data:`MAX_MEMBERS`.

    Example::

        >>> net = ReconstructionEnsemble("mama_monai.networks.ConvAutoEncoder",
        ...                              {"spatial_dims": 2, "channels": [4, 8]}, members=3)
        >>> net(torch.rand(2, 1, 16, 16)).shape
        torch.Size([2, 1, 16, 16])
    """

    def __init__(self, network: str, network_args: Mapping[str, Any], members: int) -> None:
        super().__init__()
        cls = member_class(network)
        if isinstance(members, bool) or not isinstance(members, int) or not 1 <= members <= MAX_MEMBERS:
            raise ValueError(f"members must be an int in [1, {MAX_MEMBERS}] (networks in the ensemble), got {members!r}.")
        if not isinstance(network_args, Mapping):
            raise ValueError(f"network_args must be a dict of {cls.__name__}'s arguments, got {type(network_args).__name__}.")
        self.network = network
        self.network_args = dict(network_args)
        self.members = nn.ModuleList(cls(**self.network_args) for _ in range(members))

    @classmethod
    def of(cls, networks: Sequence[nn.Module], network: str, network_args: Mapping[str, Any]) -> "ReconstructionEnsemble":
        """The ensemble of trained ``networks`` (their weights copied), all of class ``network`` with ``network_args``."""
        ensemble = cls(network, network_args, len(networks))
        for member, trained in zip(ensemble.members, networks):
            if type(trained) is not type(member):
                raise ValueError(f"every network must be a {type(member).__name__}, got {type(trained).__name__}.")
            member.load_state_dict(trained.state_dict())
        return ensemble.to(next(networks[0].parameters()).device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.members[0](x)
        for member in self.members[1:]:
            out = out + member(x)
        return out / len(self.members)

    def reconstruct(self, x: torch.Tensor) -> ModelOutput:
        """The mean reconstruction; the latent codes of the members concatenated along channels
        (each member's code lives in its own space); no memory readout."""
        outs = [member.reconstruct(x) for member in self.members]
        reconstruction = torch.stack([o.reconstruction for o in outs]).mean(0)
        return ModelOutput(reconstruction, torch.cat([o.latent for o in outs], dim=1), None)
