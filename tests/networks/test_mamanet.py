import pytest
import torch
from monai.bundle import ConfigParser
from monai.networks import eval_mode

from mama_monai.losses import ReconstructionLoss
from mama_monai.networks import MAMANet

TINY = {"channels": (8, 16, 16), "decoder_channels": (16, 8), "num_slots": 16, "block_args": {"head_dim": 8}}

CASES = [
    # [kwargs, input_shape, expected_shape]
    # the paper's size; pooled attention context keeps the CPU cost low, the sizes are the same
    [{"spatial_dims": 2, "in_channels": 1, "img_size": (228, 228), **TINY, "block_args": {"head_dim": 8, "context_size": 8}}, (1, 1, 228, 228), (1, 1, 228, 228)],
    [{"spatial_dims": 2, "in_channels": 1, "img_size": 57, **TINY}, (2, 1, 57, 57), (2, 1, 57, 57)],
    [{"spatial_dims": 2, "in_channels": 3, "img_size": (29, 30), **TINY}, (1, 3, 29, 30), (1, 3, 29, 30)],
    [{"spatial_dims": 2, "in_channels": 1, "memory_mode": "local", **TINY}, (2, 1, 37, 41), (2, 1, 37, 41)],
    [{"spatial_dims": 2, "in_channels": 1, "memory_mode": "local", **TINY}, (2, 1, 64, 65), (2, 1, 64, 65)],
    [{"spatial_dims": 2, "in_channels": 2, "out_channels": 1, "memory_mode": "local", **TINY}, (1, 2, 33, 17), (1, 1, 33, 17)],
    [{"spatial_dims": 3, "in_channels": 1, "img_size": (17, 16, 9), **TINY}, (1, 1, 17, 16, 9), (1, 1, 17, 16, 9)],
    [{"spatial_dims": 3, "in_channels": 1, "memory_mode": "local", "use_semantic_basis": False, **TINY}, (2, 1, 11, 12, 13), (2, 1, 11, 12, 13)],
]


@pytest.mark.parametrize("kwargs, input_shape, expected_shape", CASES)
def test_output_shape_equals_input_shape(kwargs, input_shape, expected_shape):
    net = MAMANet(**kwargs)
    with eval_mode(net):
        out = net(torch.rand(input_shape))
    assert out.shape == expected_shape


def test_paper_configuration_rounds_228_to_29():
    parser = ConfigParser()
    parser.read_config("configs/network/mamanet_paper.yaml")
    with torch.device("meta"):
        net = parser.get_parsed_content("network_def")
    assert net.latent_size == [29, 29]
    assert net.memory.slots.shape == (2000, 29 * 29 * 512)
    assert net.memory.hash.out_features == 128


def test_reconstruct_exposes_latent_and_memory_readout():
    net = MAMANet(2, 1, memory_mode="local", **TINY).eval()
    out = net.reconstruct(torch.rand(2, 1, 32, 32))
    assert out.latent.shape == (2, 16, 4, 4)
    assert out.memory.output.shape == out.latent.shape
    assert out.memory.indices.shape == (2 * 16,)
    assert out.memory.weights.shape == (2 * 16, 16)


def test_global_memory_reads_one_slot_per_image():
    net = MAMANet(2, 1, img_size=32, **TINY).eval()
    out = net.reconstruct(torch.rand(3, 1, 32, 32))
    assert out.memory.indices.shape == (3,)
    torch.testing.assert_close(out.memory.output[1].flatten(), net.memory.slots[out.memory.indices[1]])


def test_semantic_basis_switch_changes_the_decoder_input():
    with_basis = MAMANet(2, 1, memory_mode="local", **TINY)
    without = MAMANet(2, 1, memory_mode="local", use_semantic_basis=False, **TINY)
    assert with_basis.bottleneck.patch.query.in_channels == 32
    assert without.bottleneck.patch.query.in_channels == 16


def test_semantic_dropout_zeroes_z_of_the_drawn_samples_in_training_only():
    torch.manual_seed(0)
    net = MAMANet(2, 1, memory_mode="local", semantic_dropout=0.5, **TINY)
    x = torch.rand(8, 1, 32, 32)
    seen = []
    handle = net.bottleneck.register_forward_hook(lambda mod, args, out: seen.append(args[0].detach().clone()))
    try:
        net.train()
        with torch.no_grad():
            z, sizes = net.encode(x)
            m = net.address(z).output
            torch.manual_seed(7)
            net.decode(m, z, sizes)
            torch.manual_seed(7)
            dropped = torch.rand(8) < 0.5  # the draw decode makes: one uniform per sample
            net.eval()
            net.decode(m, z, sizes)
    finally:
        handle.remove()
    train_in, eval_in = seen
    c = m.shape[1]
    assert 0 < int(dropped.sum()) < 8  # both kinds of sample in this draw
    torch.testing.assert_close(train_in[:, :c], m)  # the memory's answer always reaches the decoder
    assert train_in[dropped, c:].abs().max() == 0  # z gone for the drawn samples
    torch.testing.assert_close(train_in[~dropped, c:], z[~dropped])  # and untouched (not rescaled) for the others
    torch.testing.assert_close(eval_in, torch.cat([m, z], dim=1))  # no dropout in eval mode


def test_gradients_reach_memory_slots_and_hash_layer(real_ct_slice):
    torch.manual_seed(0)
    net = MAMANet(2, 1, memory_mode="local", **TINY).train()
    x = real_ct_slice.repeat(2, 1, 1, 1)
    out = net.reconstruct(x)
    ReconstructionLoss()(out.reconstruction, x, out.memory.loss).backward()
    assert net.memory.slots.grad.abs().sum() > 0
    assert net.memory.hash.weight.grad.abs().sum() > 0
    assert net.encoder[0].patch.query.weight.grad is not None


def test_optimiser_steps_on_a_real_image_lower_the_loss(real_ct_slice):
    torch.manual_seed(0)
    net = MAMANet(2, 1, memory_mode="local", **TINY).train()
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    loss_fn = ReconstructionLoss()
    x = real_ct_slice.repeat(4, 1, 1, 1)
    losses = []
    for _ in range(12):
        out = net.reconstruct(x)
        loss = loss_fn(out.reconstruction, x, out.memory.loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_torchscript_round_trip(tmp_path):
    torch.manual_seed(0)
    net = MAMANet(2, 1, memory_mode="local", **TINY).eval()
    x = torch.rand(2, 1, 35, 33)
    torch.jit.save(torch.jit.script(net), tmp_path / "net.ts")
    loaded = torch.jit.load(tmp_path / "net.ts")
    torch.testing.assert_close(loaded(x), net(x))
    with pytest.raises(Exception, match="channel"):
        loaded(torch.rand(2, 3, 35, 33))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"spatial_dims": 1, "in_channels": 1}, "spatial_dims must be 2 or 3, got 1"),
        ({"spatial_dims": 2, "in_channels": 1}, "img_size is required with memory_mode='global'"),
        ({"spatial_dims": 2, "in_channels": 1, "img_size": 4}, r"img_size must give 2 sizes, each >= 8 .* got 4"),
        ({"spatial_dims": 2, "in_channels": 1, "img_size": (32, 32, 32)}, r"img_size must give 2 sizes.* got \(32, 32, 32\)"),
        ({"spatial_dims": 2, "in_channels": 1, "img_size": 32, "memory_mode": "cloud"}, "memory_mode must be one of .* got 'cloud'"),
        ({"spatial_dims": 2, "in_channels": 1, "img_size": 32, "channels": ()}, r"channels must list at least 1 width\(s\), got \(\)"),
        ({"spatial_dims": 2, "in_channels": 1, "img_size": 32, "channels": (8, -1)}, "channels must be an integer >= 1, got -1"),
        ({"spatial_dims": 2, "in_channels": 1, "img_size": 32, "decoder_channels": (8,)}, r"decoder_channels must have len\(channels\) - 1 = 2 values, got \(8,\)"),
        ({"spatial_dims": 2, "in_channels": 1, "img_size": 32, "num_slots": 0}, "num_slots must be an integer >= 1, got 0"),
        ({"spatial_dims": 2, "in_channels": 1, "img_size": 32, "memory_args": {"addressing": "x"}}, "addressing must be one of"),
        ({"spatial_dims": 2, "in_channels": 1, "img_size": 32, "semantic_dropout": 1.0}, r"semantic_dropout must be >= 0 and < 1.* got 1.0"),
        ({"spatial_dims": 2, "in_channels": 1, "img_size": 32, "semantic_dropout": -0.1}, r"semantic_dropout must be >= 0 and < 1.* got -0.1"),
        ({"spatial_dims": 2, "in_channels": 1, "img_size": 32, "semantic_dropout": 0.5, "use_semantic_basis": False},
         r"0 without use_semantic_basis, got 0.5 \(use_semantic_basis=False\)"),
    ],
)
def test_rejects_bad_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MAMANet(**kwargs)


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.rand(1, 3, 32, 32), r"input must have 1 channel\(s\) \(in_channels\), got 3"),
        (torch.rand(1, 32, 32), r"input must have shape \(B, C, H, W\) \(4 dims\), got shape \[1, 32, 32\]"),
        (torch.rand(1, 1, 32, 31), r"input spatial shape must be img_size=\[32, 32\] .* got \[32, 31\]"),
        (torch.full((1, 1, 32, 32), float("nan")), "input contains NaN or infinite values"),
    ],
)
def test_rejects_bad_input_before_computing(x, message):
    net = MAMANet(2, 1, img_size=32, **TINY).eval()
    with pytest.raises(ValueError, match=message):
        net(x)


def test_local_memory_rejects_inputs_smaller_than_the_depth_allows():
    net = MAMANet(2, 1, memory_mode="local", **TINY).eval()
    with pytest.raises(ValueError, match=r"every spatial size must be >= 8 .* got \[7, 30\]"):
        net(torch.rand(1, 1, 7, 30))


@pytest.mark.parametrize("name", ["mamanet_compact", "mamanet_paper"])
def test_configs_instantiate(name):
    parser = ConfigParser()
    parser.read_config(f"configs/network/{name}.yaml")
    with torch.device("meta"):
        assert isinstance(parser.get_parsed_content("network_def"), MAMANet)
