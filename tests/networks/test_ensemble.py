"""ReconstructionEnsemble: the mean of its members' reconstructions, built from trained networks,
described and rebuilt as a model file rebuilds it."""

import pytest
import torch
from monai.networks import eval_mode

from mama_monai.arguments import described
from mama_monai.engines.stored_config import network_spec
from mama_monai.networks import ConvAutoEncoder, MAMANet, MemAE, ReconstructionEnsemble

AE_ARGS = {"spatial_dims": 2, "in_channels": 1, "channels": [4, 8]}


def _trained(seed: int, cls=ConvAutoEncoder, **args) -> torch.nn.Module:
    """A network with its own random weights (a stand-in for a member trained from ``seed``)."""
    torch.manual_seed(seed)
    return cls(**(args or AE_ARGS)).eval()


@pytest.mark.parametrize("cls, args", [
    (ConvAutoEncoder, AE_ARGS),
    (MemAE, {**AE_ARGS, "num_slots": 10}),
    (MAMANet, {"spatial_dims": 2, "in_channels": 1, "channels": [8, 16, 16], "decoder_channels": [16, 8], "num_slots": 16, "memory_mode": "local",
               "block_args": {"head_dim": 8}}),
])  # fmt: skip
def test_the_output_is_the_mean_of_the_trained_networks_outputs(cls, args):
    networks = [_trained(seed, cls, **args) for seed in (0, 1, 2)]
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        expected = sum(n(x) for n in networks) / 3  # each network on its own
    ensemble = ReconstructionEnsemble.of(networks, f"mama_monai.networks.{cls.__name__}", args)
    with eval_mode(ensemble), torch.no_grad():
        torch.testing.assert_close(ensemble(x), expected)
        detailed = ensemble.reconstruct(x)
    torch.testing.assert_close(detailed.reconstruction, expected)
    latents = [n.reconstruct(x).latent for n in networks]
    torch.testing.assert_close(detailed.latent, torch.cat(latents, dim=1))
    assert detailed.memory is None


def test_the_members_are_copies_not_the_trained_networks():
    networks = [_trained(0), _trained(1)]
    ensemble = ReconstructionEnsemble.of(networks, "mama_monai.networks.ConvAutoEncoder", AE_ARGS)
    with torch.no_grad():
        next(networks[0].parameters()).add_(1.0)
    assert not torch.equal(next(ensemble.members[0].parameters()), next(networks[0].parameters()))


def test_one_member_is_that_network():
    network = _trained(3)
    ensemble = ReconstructionEnsemble.of([network], "ConvAutoEncoder", AE_ARGS)
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(ensemble.eval()(x), network(x), rtol=0, atol=0)


def test_described_and_rebuilt_as_a_model_file_rebuilds_it():
    ensemble = ReconstructionEnsemble.of([_trained(0), _trained(1)], "mama_monai.networks.ConvAutoEncoder", AE_ARGS)
    spec = described(ensemble)
    assert spec == {"_target_": "mama_monai.networks.ReconstructionEnsemble", "network": "mama_monai.networks.ConvAutoEncoder",
                    "network_args": AE_ARGS, "members": 2}  # fmt: skip
    cls, kwargs = network_spec(spec)
    rebuilt = cls(**kwargs)
    rebuilt.load_state_dict(ensemble.state_dict())
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), ensemble.eval()(x), rtol=0, atol=0)


@pytest.mark.parametrize("network, args, members, message", [
    ("torch.nn.Identity", {}, 2, r"network must name one of .*'torch\.nn\.Identity'"),
    ("mama_monai.networks.ReconstructionEnsemble", {}, 2, r"network must name one of"),
    ("ConvAutoEncoder", AE_ARGS, 0, r"members must be an int in \[1, 32\].*got 0"),
    ("ConvAutoEncoder", AE_ARGS, 33, r"members must be an int in \[1, 32\].*got 33"),
    ("ConvAutoEncoder", AE_ARGS, True, r"members must be an int .*got True"),
    ("ConvAutoEncoder", [1, 2], 2, r"network_args must be a dict of ConvAutoEncoder's arguments, got list"),
])  # fmt: skip
def test_bad_arguments_are_refused_by_name(network, args, members, message):
    with pytest.raises(ValueError, match=message):
        ReconstructionEnsemble(network, args, members)


def test_members_of_another_class_are_refused():
    with pytest.raises(ValueError, match="every network must be a ConvAutoEncoder, got MemAE"):
        ReconstructionEnsemble.of([_trained(0), _trained(1, MemAE, **AE_ARGS, num_slots=4)], "ConvAutoEncoder", AE_ARGS)
