"""Graded: positional encodings (m1_t4): sinusoidal and RoPE."""

import math

import pytest
import torch


@pytest.mark.m1_t4
def test_sinusoidal_values(impl):
    pe = impl.sinusoidal_encoding(50, 16)
    assert pe.shape == (50, 16)
    p, i, d = 7, 3, 16
    angle = p / 10000 ** (2 * i / d)
    assert pe[p, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
    assert pe[p, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    assert torch.allclose(pe[0, 0::2], torch.zeros(8)) and torch.allclose(pe[0, 1::2], torch.ones(8))


@pytest.mark.m1_t4
def test_sinusoidal_matches_reference(impl):
    from month1_transformer.positional import sinusoidal_encoding

    torch.testing.assert_close(impl.sinusoidal_encoding(64, 32), sinusoidal_encoding(64, 32), atol=1e-6, rtol=0)


@pytest.mark.m1_t4
def test_rope_preserves_norm_and_is_relative(impl):
    """RoPE rotates: norms are kept, and q_m . k_n depends only on m - n."""
    torch.manual_seed(0)
    head_dim = 16
    q, k = torch.randn(head_dim), torch.randn(head_dim)
    cos, sin = impl.rope_cache(torch.arange(40), head_dim)

    def rotated(x, pos):
        return impl.apply_rope(x[None, :], cos[pos : pos + 1], sin[pos : pos + 1])[0]

    assert rotated(q, 13).norm().item() == pytest.approx(q.norm().item(), rel=1e-5)
    scores = [torch.dot(rotated(q, m), rotated(k, m - 5)).item() for m in (5, 12, 30, 39)]
    assert max(scores) - min(scores) < 1e-4, scores
    assert abs(torch.dot(rotated(q, 20), rotated(k, 10)).item() - scores[0]) > 1e-3  # offset 10 != 5


@pytest.mark.m1_t4
def test_rope_matches_transformers_llama(impl):
    llama = pytest.importorskip("transformers.models.llama.modeling_llama")
    torch.manual_seed(0)
    b, h, t, d = 2, 3, 7, 8
    q, k = torch.randn(b, h, t, d), torch.randn(b, h, t, d)
    cos, sin = impl.rope_cache(torch.arange(t), d)
    q_ref, k_ref = llama.apply_rotary_pos_emb(q, k, cos[None], sin[None])
    torch.testing.assert_close(impl.apply_rope(q, cos, sin), q_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(impl.apply_rope(k, cos, sin), k_ref, atol=1e-5, rtol=1e-5)


def test_model_trains_with_each_positional_encoding():
    """All four choices build, run and differ (positions do matter, except 'none')."""
    from month1_transformer.model import GPT, GPTConfig

    idx = torch.randint(0, 20, (2, 12))
    outputs = {}
    for pos_enc in ("learned", "sinusoidal", "rope", "none"):
        torch.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=20, block_size=16, n_layer=1, n_head=2, n_embd=16, pos_enc=pos_enc))
        logits, loss = model(idx, idx)
        loss.backward()
        outputs[pos_enc] = logits
    assert not torch.allclose(outputs["rope"], outputs["none"])
