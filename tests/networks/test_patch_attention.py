import itertools

import pytest
import torch

from mama_monai.networks import PixelPatchAttention


def reference_patch_attention(block: PixelPatchAttention, x: torch.Tensor) -> torch.Tensor:
    """Brute force: loop over every position and its in-image neighbours."""
    q, k, v = block.query(x), block.key(x), block.value(x)
    size = x.shape[2:]
    r = block.patch_size // 2
    out = torch.zeros_like(q)
    for pos in itertools.product(*[range(s) for s in size]):
        idx = (slice(None), slice(None)) + pos
        logits, values = [], []
        for off in itertools.product(range(-r, r + 1), repeat=len(size)):
            nb = tuple(p + o for p, o in zip(pos, off))
            nidx = (slice(None), slice(None)) + nb
            if all(0 <= n < s for n, s in zip(nb, size)):
                logits.append((q[idx] * k[nidx]).sum(1))
                values.append(v[nidx])
            elif not block.use_softmax:  # zero padding contributes nothing
                continue
        logits = torch.stack(logits, 1) * block.scale
        w = torch.softmax(logits, 1) if block.use_softmax else logits
        out[idx] = sum(w[:, i : i + 1] * values[i] for i in range(len(values)))
    if block.residual:
        return x + block.gamma * block.out_proj(out)
    return out


@pytest.mark.parametrize("normalization", ["softmax", "scaled"])
@pytest.mark.parametrize("shape", [(2, 4, 5, 6), (1, 4, 3, 4, 5)])
def test_matches_brute_force_reference(normalization, shape):
    torch.manual_seed(0)
    block = PixelPatchAttention(len(shape) - 2, 4, attn_channels=6, normalization=normalization)
    with torch.no_grad():
        block.gamma.fill_(0.7)
    x = torch.randn(shape)
    torch.testing.assert_close(block(x), reference_patch_attention(block, x), rtol=1e-4, atol=1e-5)


def test_literal_form_returns_attention_channels():
    block = PixelPatchAttention(2, 4, attn_channels=8, residual=False, normalization="scaled")
    assert block.out_channels == 8
    assert block(torch.rand(1, 4, 7, 7)).shape == (1, 8, 7, 7)


def test_residual_block_starts_as_identity():
    block = PixelPatchAttention(2, 3)
    x = torch.rand(2, 3, 9, 9)
    torch.testing.assert_close(block(x), x)


def test_patch_size_5_matches_reference():
    torch.manual_seed(1)
    block = PixelPatchAttention(2, 2, patch_size=5, residual=False)
    x = torch.randn(1, 2, 6, 6)
    torch.testing.assert_close(block(x), reference_patch_attention(block, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"spatial_dims": 4, "in_channels": 2}, "spatial_dims must be 2 or 3, got 4"),
        ({"spatial_dims": 2, "in_channels": 0}, "in_channels must be an integer >= 1, got 0"),
        ({"spatial_dims": 2, "in_channels": 2, "patch_size": 4}, "patch_size must be odd .* got 4"),
        ({"spatial_dims": 2, "in_channels": 2, "normalization": "relu"}, "normalization must be one of .* got 'relu'"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PixelPatchAttention(**kwargs)
