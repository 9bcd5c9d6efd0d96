"""benchmarks/speed.py: FLOPs counted on the meta device (no memory, any size) equal the count on
real tensors, for the networks whose hash memory keeps counters (a crash there once cost the GPU
run its whole speed table)."""

import sys
from pathlib import Path

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import speed  # noqa: E402
from mama_monai.losses import ReconstructionLoss  # noqa: E402


def _real_tensor_flops(config: str, img_size: int, batch: int) -> dict[str, float]:
    """The reference: the same passes on the CPU with real tensors and an untouched memory."""
    torch.manual_seed(0)
    net = speed.build(config, torch.device("cpu"))
    with sdpa_kernel(SDPBackend.MATH):
        net.train()  # one training call first: the memory starts from a batch as in training
        net.reconstruct(torch.rand(speed.input_shape(net, img_size, batch)))
        net.eval()
        x = torch.rand(speed.input_shape(net, img_size, 1))
        with torch.no_grad():
            net(x)
            with FlopCounterMode(display=False) as fc:
                net(x)
        fwd = fc.get_total_flops()
        net.train()
        x = torch.rand(speed.input_shape(net, img_size, batch))
        with FlopCounterMode(display=False) as fc:
            out = net.reconstruct(x)
            ReconstructionLoss()(out.reconstruction, x, out.memory.loss if out.memory is not None else None).backward()
    return {"gflop_fwd": fwd / 1e9, "gflop_train_step": fc.get_total_flops() / batch / 1e9}


@pytest.mark.parametrize("name", ["mamanet_compact", "memae"])
def test_meta_device_flops_equal_the_real_tensor_count(name):
    config = str(ROOT / "configs" / "network" / f"{name}.yaml")
    counted = speed.count_flops(config, 32, 2)
    assert counted["gflop_fwd"] > 0
    assert counted == pytest.approx(_real_tensor_flops(config, 32, 2), rel=1e-9)


def test_the_network_table_counts_the_same_forward_flops_as_real_tensors():
    from benchmarks import networks

    counted = networks.count_flops("compact", 32, 2)
    reference = _real_tensor_flops(str(ROOT / "configs" / "network" / "mamanet_compact.yaml"), 32, 2)
    assert counted["gflop_fwd"] == pytest.approx(reference["gflop_fwd"], rel=1e-9)
    # the training-mode forward alone, per image, on real tensors
    torch.manual_seed(0)
    net = speed.build(str(ROOT / "configs" / "network" / "mamanet_compact.yaml"), torch.device("cpu")).train()
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad():
        net(torch.rand(speed.input_shape(net, 32, 2)))
        with FlopCounterMode(display=False) as fc:
            net(torch.rand(speed.input_shape(net, 32, 2)))
    assert counted["gflop_train_fwd"] == pytest.approx(fc.get_total_flops() / 2 / 1e9, rel=1e-9)
