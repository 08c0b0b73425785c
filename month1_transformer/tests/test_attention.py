"""Graded: softmax (m1_t1), attention and masks (m1_t2), multi-head attention (m1_t3).
Each is checked against PyTorch's own implementation with explicit tolerances."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

ATOL = 1e-5


@pytest.mark.m1_t1
def test_softmax_matches_torch(impl):
    x = torch.randn(4, 7, 11) * 3
    for dim in (-1, 0, 1):
        torch.testing.assert_close(impl.softmax(x, dim=dim), torch.softmax(x, dim=dim), atol=ATOL, rtol=1e-5)


@pytest.mark.m1_t1
def test_softmax_is_stable_and_handles_fully_masked_rows(impl):
    x = torch.tensor([[1000.0, 1001.0, 1002.0], [-1e4, 0.0, 1e4]])
    torch.testing.assert_close(impl.softmax(x), torch.softmax(x, dim=-1), atol=ATOL, rtol=1e-5)
    masked = torch.tensor([[float("-inf")] * 3, [0.0, float("-inf"), 0.0]])
    out = impl.softmax(masked)
    assert torch.isfinite(out).all(), "a fully masked row must give zeros, not NaN"
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.0, 0.5]]))


@pytest.mark.m1_t2
def test_causal_mask_square_and_cached(impl):
    assert torch.equal(impl.causal_mask(3, 3), torch.tril(torch.ones(3, 3, dtype=torch.bool)))
    # Two new queries after three cached positions: they are positions 3 and 4 of 5.
    expected = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(impl.causal_mask(2, 5), expected)


@pytest.mark.m1_t2
@pytest.mark.parametrize("is_causal", [False, True])
def test_sdpa_matches_torch(impl, is_causal):
    q, k, v = (torch.randn(2, 3, 6, 8) for _ in range(3))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)
    torch.testing.assert_close(impl.scaled_dot_product_attention(q, k, v, is_causal=is_causal), expected,
                               atol=ATOL, rtol=1e-4)


@pytest.mark.m1_t2
def test_sdpa_padding_mask(impl):
    q, k, v = (torch.randn(2, 2, 5, 4) for _ in range(3))
    lengths = torch.tensor([5, 3])
    keep = (torch.arange(5)[None, :] < lengths[:, None])[:, None, None, :]  # (B, 1, 1, T)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    out = impl.scaled_dot_product_attention(q, k, v, mask=keep)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=1e-4)
    # Padded keys must not matter at all: change them and nothing moves.
    k2, v2 = k.clone(), v.clone()
    k2[1, :, 3:], v2[1, :, 3:] = 100.0, -100.0
    torch.testing.assert_close(impl.scaled_dot_product_attention(q, k2, v2, mask=keep), out, atol=ATOL, rtol=1e-4)


@pytest.mark.m1_t2
def test_sdpa_causal_with_cache_alignment(impl):
    q_full, k, v = (torch.randn(1, 2, 6, 4) for _ in range(3))
    full = impl.scaled_dot_product_attention(q_full, k, v, is_causal=True)
    last_two = impl.scaled_dot_product_attention(q_full[:, :, -2:], k, v, is_causal=True)
    torch.testing.assert_close(last_two, full[:, :, -2:], atol=ATOL, rtol=1e-4)


def _copy_from_torch_mha(ours: nn.Module, ref: nn.MultiheadAttention) -> None:
    w_q, w_k, w_v = ref.in_proj_weight.chunk(3)
    b_q, b_k, b_v = ref.in_proj_bias.chunk(3)
    with torch.no_grad():
        for proj, w, b in ((ours.q_proj, w_q, b_q), (ours.k_proj, w_k, b_k), (ours.v_proj, w_v, b_v)):
            proj.weight.copy_(w)
            proj.bias.copy_(b)
        ours.out_proj.weight.copy_(ref.out_proj.weight)
        ours.out_proj.bias.copy_(ref.out_proj.bias)


@pytest.mark.m1_t3
@pytest.mark.parametrize("causal", [False, True])
def test_multihead_matches_nn_multiheadattention(impl, causal):
    torch.manual_seed(0)
    d_model, n_head, t = 32, 4, 9
    ref = nn.MultiheadAttention(d_model, n_head, batch_first=True)
    ours = impl.MultiHeadAttention(d_model, n_head)
    _copy_from_torch_mha(ours, ref)
    x = torch.randn(3, t, d_model)
    # nn.MultiheadAttention's attn_mask: True = NOT allowed.
    blocked = ~torch.tril(torch.ones(t, t, dtype=torch.bool)) if causal else None
    expected, _ = ref(x, x, x, attn_mask=blocked, need_weights=False)
    torch.testing.assert_close(ours(x, is_causal=causal), expected, atol=ATOL, rtol=1e-4)


@pytest.mark.m1_t3
def test_multihead_padding_mask(impl):
    torch.manual_seed(1)
    d_model, n_head = 16, 2
    ref = nn.MultiheadAttention(d_model, n_head, batch_first=True)
    ours = impl.MultiHeadAttention(d_model, n_head)
    _copy_from_torch_mha(ours, ref)
    x = torch.randn(2, 6, d_model)
    attention_mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    expected, _ = ref(x, x, x, key_padding_mask=attention_mask == 0, need_weights=False)
    out = ours(x, mask=attention_mask.bool()[:, None, None, :])
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=1e-4)


def test_fused_and_explicit_attention_agree():
    from month1_transformer.attention import MultiHeadAttention

    torch.manual_seed(0)
    explicit = MultiHeadAttention(32, 4, fused=False)
    fused = MultiHeadAttention(32, 4, fused=True)
    fused.load_state_dict(explicit.state_dict())
    x = torch.randn(2, 10, 32)
    torch.testing.assert_close(fused(x, is_causal=True), explicit(x, is_causal=True), atol=ATOL, rtol=1e-4)
