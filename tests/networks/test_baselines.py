import pytest
import torch
from monai.bundle import ConfigParser
from monai.networks import eval_mode

from mama_monai.networks import ConvAutoEncoder, CosineMemory, MemAE


@pytest.mark.parametrize("cls", [ConvAutoEncoder, MemAE])
@pytest.mark.parametrize("shape", [(2, 1, 33, 30), (2, 1, 228, 228), (1, 1, 9, 10, 11)])
def test_output_shape_equals_input_shape(cls, shape):
    extra = {"num_slots": 10} if cls is MemAE else {}
    net = cls(len(shape) - 2, 1, channels=(4, 8), **extra)
    with eval_mode(net):
        assert net(torch.rand(shape)).shape == shape


def test_autoencoder_has_no_memory():
    out = ConvAutoEncoder(2, 1, channels=(4, 8)).reconstruct(torch.rand(1, 1, 16, 16))
    assert out.memory is None and out.latent.shape == (1, 8, 4, 4)


def test_memae_weights_are_sparse_and_sum_to_one():
    torch.manual_seed(0)
    memory = CosineMemory(num_slots=50, feature_dim=8, shrink_threshold=0.025)
    readout = memory(torch.randn(100, 8))
    torch.testing.assert_close(readout.weights.sum(1), torch.ones(100))
    assert (readout.weights == 0).any(), "hard shrinkage should zero small weights"
    assert readout.loss > 0


def test_memae_decoder_sees_only_memory_output():
    torch.manual_seed(0)
    net = MemAE(2, 1, channels=(4, 8), num_slots=6).eval()
    out = net.reconstruct(torch.rand(2, 1, 16, 16))
    expected = (out.memory.weights @ net.memory.slots).reshape(2, 4, 4, 8).permute(0, 3, 1, 2)
    torch.testing.assert_close(out.memory.output, expected)
    assert net.decoder[0].conv.conv.in_channels == 8


@pytest.mark.parametrize("cls", [ConvAutoEncoder, MemAE])
def test_torchscript_round_trip(cls, tmp_path):
    net = cls(2, 1, channels=(4, 8)).eval()
    x = torch.rand(2, 1, 20, 19)
    torch.jit.save(torch.jit.script(net), tmp_path / "net.ts")
    torch.testing.assert_close(torch.jit.load(tmp_path / "net.ts")(x), net(x))


@pytest.mark.parametrize("name", ["autoencoder", "memae"])
def test_configs_instantiate(name):
    parser = ConfigParser()
    parser.read_config(f"configs/network/{name}.yaml")
    net = parser.get_parsed_content("network_def")
    with eval_mode(net):
        assert net(torch.rand(1, 1, 32, 32)).shape == (1, 1, 32, 32)


def test_rejects_bad_shrink_threshold():
    with pytest.raises(ValueError, match=r"shrink_threshold must be in \[0, 1\), got 1.5"):
        CosineMemory(10, 4, shrink_threshold=1.5)


def test_rejects_wrong_input_channels():
    with pytest.raises(ValueError, match=r"input must have 1 channel\(s\)"):
        ConvAutoEncoder(2, 1, channels=(4,))(torch.rand(1, 2, 8, 8))
