import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from mama_monai.networks import GlobalCrossAttention
from mama_monai.networks.blocks import default_attn_channels


def reference_cross_attention(att: GlobalCrossAttention, query, context):
    """Materialised softmax(Q K^T / sqrt(d)) V, head by head."""
    b = query.shape[0]
    q = att.to_q(query).reshape(b, att.num_heads, att.head_dim, -1)
    k = att.to_k(context).reshape(b, att.num_heads, att.head_dim, -1)
    v = att.to_v(context).reshape(b, att.num_heads, att.head_dim, -1)
    w = torch.softmax(torch.einsum("bhdq,bhdk->bhqk", q, k) / att.head_dim**0.5, dim=-1)
    out = torch.einsum("bhqk,bhdk->bhdq", w, v).reshape(b, -1, *query.shape[2:])
    out = att.out_proj(out)
    return query + att.gamma * out if att.residual else out


@pytest.mark.parametrize("spatial", [(2, (6, 5), (11, 9)), (3, (3, 4, 2), (5, 7, 4))])
@pytest.mark.parametrize("residual", [True, False])
def test_matches_materialised_attention(spatial, residual):
    dims, out_size, in_size = spatial
    torch.manual_seed(0)
    att = GlobalCrossAttention(dims, query_channels=16, context_channels=8, head_dim=8, residual=residual)
    with torch.no_grad():
        att.gamma.fill_(0.5)
    query, context = torch.randn(2, 16, *out_size), torch.randn(2, 8, *in_size)
    out = att(query, context)
    assert out.shape == query.shape
    torch.testing.assert_close(out, reference_cross_attention(att, query, context), rtol=1e-4, atol=1e-5)


def test_every_output_position_sees_every_input_position():
    torch.manual_seed(0)
    att = GlobalCrossAttention(2, 8, 8, residual=False)
    query = torch.randn(1, 8, 4, 4)
    context = torch.randn(1, 8, 10, 10, requires_grad=True)
    att(query, context)[0, :, 0, 0].sum().backward()
    assert (context.grad.abs().sum(1) > 0).all()


def test_pooled_context_matches_attention_over_pooled_input():
    torch.manual_seed(0)
    att = GlobalCrossAttention(2, 8, 8, context_size=4)
    full = GlobalCrossAttention(2, 8, 8)
    full.load_state_dict(att.state_dict())
    query, context = torch.randn(1, 8, 6, 6), torch.randn(1, 8, 16, 16)
    pooled = torch.nn.functional.adaptive_avg_pool2d(context, 4)
    torch.testing.assert_close(att(query, context), full(query, pooled))


def test_tiny_outputs_attend_at_a_wider_width():
    assert default_attn_channels(1, 64) == 64
    assert default_attn_channels(3, 5) == 8
    assert default_attn_channels(512, 1024) == 512
    att = GlobalCrossAttention(2, query_channels=1, context_channels=64)
    assert att.num_heads * att.head_dim == 64 and att.head_dim % 8 == 0


def test_rejects_head_dim_that_does_not_divide_width():
    with pytest.raises(ValueError, match=r"attn_channels \(48\) must be a multiple of head_dim, got head_dim=32"):
        GlobalCrossAttention(2, 48, 48, head_dim=32)


def test_rejects_bad_context_size():
    with pytest.raises(ValueError, match="context_size must be an integer >= 1, got 0"):
        GlobalCrossAttention(2, 8, 8, context_size=0)


@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_kernel_accepts_heads_in_both_layouts(channels_last):
    # flash / memory-efficient SDPA need a unit stride on head_dim; a strided view silently falls
    # back to the math kernel that materialises the attention matrix (measured on an H200: 8x
    # slower). Under sdpa_kernel([FLASH_ATTENTION]) the CPU refuses ("No available kernel") any
    # input the fused kernel cannot take, so this fails if _heads ever hands it a strided view.
    torch.manual_seed(0)
    att = GlobalCrossAttention(2, 16, 16, head_dim=8)
    with torch.no_grad():
        att.gamma.fill_(0.5)
    query, context = torch.randn(2, 16, 5, 7), torch.randn(2, 16, 9, 9)
    reference = att(query, context)
    if channels_last:
        query, context = (t.to(memory_format=torch.channels_last) for t in (query, context))
    heads = att._heads(context)
    assert heads.shape == (2, 2, 81, 8) and heads.stride(-1) == 1
    if channels_last:
        assert heads.data_ptr() == context.data_ptr()  # a view: no layout copy
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        out = att(query, context)
    torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-6)
    assert out.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
