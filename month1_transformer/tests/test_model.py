"""The GPT model: shapes, causality, KV-cache generation equal to uncached, sampling filters."""

import pytest
import torch

from month1_transformer.attention import KVCache
from month1_transformer.model import GPT, GPTConfig
from month1_transformer.sampling import sample_next_token, top_k_filter, top_p_filter


def tiny(**kw):
    torch.manual_seed(0)
    cfg = dict(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=32)
    return GPT(GPTConfig(**{**cfg, **kw})).eval()


def test_forward_shapes_loss_and_weight_tying():
    model = tiny()
    idx, targets = torch.randint(0, 40, (2, 3, 16))
    logits, loss = model(idx, targets)
    assert logits.shape == (3, 16, 40)
    assert loss.item() == pytest.approx(torch.log(torch.tensor(40.0)).item(), rel=0.05)  # ~uniform at init
    assert model.lm_head.weight is model.tok_emb.weight
    assert tiny(tie_weights=False).num_params() > model.num_params()


def test_model_is_causal():
    model = tiny(pos_enc="rope")
    idx = torch.randint(0, 40, (1, 12))
    changed = idx.clone()
    changed[0, 8:] = (changed[0, 8:] + 1) % 40
    torch.testing.assert_close(model(idx)[0][:, :8], model(changed)[0][:, :8])


@pytest.mark.parametrize("pos_enc", ["learned", "sinusoidal", "rope", "none"])
def test_cached_prefill_and_decode_equal_full_forward(pos_enc):
    model = tiny(pos_enc=pos_enc)
    idx = torch.randint(0, 40, (2, 12))
    full, _ = model(idx)
    cache = KVCache(model.cfg.n_layer)
    pieces = [model(idx[:, :5], cache=cache)[0]]
    pieces += [model(idx[:, t : t + 1], cache=cache)[0] for t in range(5, 12)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("pos_enc", ["learned", "rope"])
@pytest.mark.parametrize("fused", [True, False])
def test_generate_with_cache_gives_the_same_tokens(pos_enc, fused):
    model = tiny(pos_enc=pos_enc, fused_attention=fused)
    prompt = torch.randint(0, 40, (2, 4))
    # 40 new tokens: well past block_size (16), so the sliding window is exercised too.
    greedy_cached = model.generate(prompt, 40, temperature=0, use_cache=True)
    greedy_plain = model.generate(prompt, 40, temperature=0, use_cache=False)
    assert torch.equal(greedy_cached, greedy_plain)
    sampled = [
        model.generate(prompt, 20, temperature=1.0, top_k=10, use_cache=c, generator=torch.Generator().manual_seed(7))
        for c in (True, False)
    ]
    assert torch.equal(*sampled)


def test_context_longer_than_block_size_is_an_error():
    with pytest.raises(ValueError, match="exceeds block_size"):
        tiny()(torch.zeros(1, 17, dtype=torch.long))


def test_bad_config_is_an_error():
    with pytest.raises(ValueError, match="pos_enc"):
        GPTConfig(pos_enc="alibi")
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=30, n_head=4)


def test_top_k_and_top_p_filters():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(top_k_filter(logits, 2)).tolist() == [[False, False, True, True]]
    # 0.5 + 0.3 = 0.8 >= 0.75: the nucleus is the first two tokens.
    assert torch.isinf(top_p_filter(logits, 0.75)).tolist() == [[False, False, True, True]]
    assert torch.isinf(top_p_filter(logits, 0.81)).tolist() == [[False, False, False, True]]
    assert torch.isinf(top_p_filter(logits, 0.1)).tolist() == [[False, True, True, True]]  # top token stays
    # Shuffled order: the filter works on probabilities, not positions.
    perm = torch.tensor([2, 0, 3, 1])
    assert torch.isinf(top_p_filter(logits[:, perm], 0.75)).tolist() == [[True, False, True, False]]


def test_sampling_follows_the_distribution():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]])).repeat(20000, 1)
    draws = sample_next_token(logits, temperature=1.0, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(draws.view(-1), minlength=3).float() / len(draws)
    torch.testing.assert_close(freq, torch.tensor([0.7, 0.2, 0.1]), atol=0.02, rtol=0)
    assert sample_next_token(logits[:1], temperature=0).item() == 0
    with pytest.raises(ValueError):
        sample_next_token(logits, temperature=-1)
