import pytest
import torch

from mama_monai.networks import MultiScaleAttentionBlock

CASES = [
    # [kwargs, input_shape, output_size, expected_shape]
    [{"spatial_dims": 2, "in_channels": 1, "out_channels": 8, "role": "down"}, (2, 1, 228, 228), None, (2, 8, 114, 114)],
    [{"spatial_dims": 2, "in_channels": 8, "out_channels": 16, "role": "down"}, (2, 8, 57, 57), None, (2, 16, 29, 29)],
    [{"spatial_dims": 2, "in_channels": 16, "out_channels": 16, "role": "same"}, (2, 16, 29, 31), None, (2, 16, 29, 31)],
    [{"spatial_dims": 2, "in_channels": 16, "out_channels": 8, "role": "up"}, (2, 16, 29, 29), [57, 57], (2, 8, 57, 57)],
    [{"spatial_dims": 2, "in_channels": 16, "out_channels": 8, "role": "up"}, (2, 16, 57, 57), [114, 113], (2, 8, 114, 113)],
    [{"spatial_dims": 2, "in_channels": 16, "out_channels": 8, "role": "up"}, (2, 16, 5, 6), None, (2, 8, 10, 12)],
    [{"spatial_dims": 3, "in_channels": 1, "out_channels": 8, "role": "down"}, (1, 1, 9, 8, 7), None, (1, 8, 5, 4, 4)],
    [{"spatial_dims": 3, "in_channels": 8, "out_channels": 1, "role": "up", "conv_only": True}, (1, 8, 5, 4, 4), [9, 8, 7], (1, 1, 9, 8, 7)],
]


@pytest.mark.parametrize("kwargs, input_shape, output_size, expected_shape", CASES)
def test_shape(kwargs, input_shape, output_size, expected_shape):
    block = MultiScaleAttentionBlock(head_dim=8, **kwargs).eval()
    with torch.no_grad():
        assert block(torch.rand(input_shape), output_size).shape == expected_shape


def test_literal_paper_form_runs_and_trains():
    block = MultiScaleAttentionBlock(2, 4, 8, role="down", patch_attention="scaled", residual=False, head_dim=8)
    out = block(torch.rand(2, 4, 12, 12))
    out.mean().backward()
    assert block.patch.query.weight.grad is not None and block.attention.to_k.weight.grad.abs().sum() > 0


def test_torchscript_round_trip(tmp_path):
    block = MultiScaleAttentionBlock(2, 4, 8, role="up", head_dim=8).eval()
    x = torch.rand(1, 4, 7, 7)
    scripted = torch.jit.script(block)
    torch.jit.save(scripted, tmp_path / "block.ts")
    loaded = torch.jit.load(tmp_path / "block.ts")
    torch.testing.assert_close(loaded(x, [13, 14]), block(x, [13, 14]))


def test_rejects_unknown_role():
    with pytest.raises(ValueError, match=r"role must be one of \['same', 'down', 'up'\], got 'sideways'"):
        MultiScaleAttentionBlock(2, 4, 8, role="sideways")
