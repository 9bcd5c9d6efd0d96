import pytest
import torch
from monai.bundle import ConfigParser
from monai.networks import eval_mode

from mama_monai.networks import ConvAutoEncoder, MemAE, MemAEMemory


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
    memory = MemAEMemory(num_slots=50, feature_dim=8, shrink_threshold=0.025)
    readout = memory(torch.randn(100, 8))
    torch.testing.assert_close(readout.weights.sum(1), torch.ones(100))
    assert (readout.weights == 0).any(), "hard shrinkage should zero small weights"
    assert readout.loss > 0


def _reference_memae_unit(query, weight, shrink_thres):
    """MemAE's reference MemoryUnit.forward (Gong et al., github.com/donggong1/memae-anomaly-detection,
    models/memory_module.py), transcribed: dot product, softmax, hard_shrink_relu, L1 normalise."""
    att = torch.nn.functional.softmax(torch.nn.functional.linear(query, weight), dim=1)
    att = (torch.nn.functional.relu(att - shrink_thres) * att) / (torch.abs(att - shrink_thres) + 1e-12)
    att = torch.nn.functional.normalize(att, p=1, dim=1)
    return torch.nn.functional.linear(att, weight.permute(1, 0)), att


def test_memae_memory_matches_reference_code():
    torch.manual_seed(0)
    memory = MemAEMemory(num_slots=40, feature_dim=16, shrink_threshold=1.5 / 40)
    with torch.no_grad():
        memory.slots.mul_(8)  # peaked softmax: no query loses every weight, so the reference applies as is
    query = torch.randn(64, 16)
    expected_out, expected_w = _reference_memae_unit(query, memory.slots, 1.5 / 40)
    readout = memory(query)
    assert (expected_w > 0).any(1).all()
    torch.testing.assert_close(readout.weights, expected_w)
    torch.testing.assert_close(readout.output, expected_out)


def test_memae_memory_keeps_best_slot_when_all_weights_shrink():
    memory = MemAEMemory(num_slots=10, feature_dim=4, shrink_threshold=0.2)
    readout = memory(torch.zeros(3, 4))  # uniform softmax 0.1 < 0.2: the reference code reads nothing
    _, reference_w = _reference_memae_unit(torch.zeros(3, 4), memory.slots, 0.2)
    assert float(reference_w.abs().sum()) == 0.0
    assert torch.equal((readout.weights > 0).sum(1), torch.ones(3, dtype=torch.long))
    torch.testing.assert_close(readout.output, memory.slots[readout.indices])


def test_memae_cosine_similarity_is_the_paper_text():
    torch.manual_seed(0)
    memory = MemAEMemory(num_slots=5, feature_dim=3, similarity="cosine")
    q = torch.randn(4, 3)
    expected = torch.nn.functional.cosine_similarity(q[:, None], memory.slots[None].detach(), dim=2)
    torch.testing.assert_close(memory.similarities(q), expected)


def _lidc_slices(n=4):
    from mama_monai.data.demo import demo_manifest
    from mama_monai.data.case_slices import load_case_slices

    manifest = demo_manifest("lidc")
    cases = [c for c in manifest.cases if c.split == "train"][:: 15][:n]
    items, _ = load_case_slices(manifest, cases, "ct_lung", (64, 64), num_workers=0)
    return torch.stack([it["image"] for it in items])


def test_memae_default_config_addresses_and_varies_with_input_before_and_after_training():
    """The first release's MemAE read nothing (all weights shrunk to 0) and decoded one constant image."""
    parser = ConfigParser()
    parser.read_config("configs/network/memae.yaml")
    torch.manual_seed(0)
    net = parser.get_parsed_content("network_def")
    x = _lidc_slices()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for step in range(2):
        with eval_mode(net):
            out = net.reconstruct(x)
        assert (out.memory.weights > 0).any(1).all(), f"some queries read no slot (step {step})"
        used = int((out.memory.weights > 0).any(0).sum())
        assert used > 1, f"one slot answers every query (step {step})"
        # a dead memory decodes one constant image for every input: spread exactly 0
        spread = (out.reconstruction - out.reconstruction.mean(0, keepdim=True)).abs().amax()
        assert spread > 0.05 * out.reconstruction.abs().mean(), f"the reconstruction does not depend on the input (step {step})"
        assert out.reconstruction.abs().max() < 10, "eval-mode outputs blew up"
        for _ in range(15 if step == 0 else 0):
            net.train()
            train_out = net.reconstruct(x)
            loss = torch.nn.functional.mse_loss(train_out.reconstruction, x) + 2e-4 * train_out.memory.loss
            optimizer.zero_grad()
            loss.backward()
            assert net.memory.slots.grad.abs().sum() > 0, "the slots receive no gradient"
            optimizer.step()


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
        MemAEMemory(10, 4, shrink_threshold=1.5)


def test_rejects_wrong_input_channels():
    with pytest.raises(ValueError, match=r"input must have 1 channel\(s\)"):
        ConvAutoEncoder(2, 1, channels=(4,))(torch.rand(1, 2, 8, 8))
