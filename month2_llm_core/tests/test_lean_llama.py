"""The lean decoder against transformers, its cache, and speculative decoding's exactness."""

import pytest
import torch

from month2_llm_core.inference import FIXED_PROMPTS, chat_input_ids, eos_ids
from month2_llm_core.lean_llama import (
    FastDecoder,
    LeanLlama,
    PreallocatedKVCache,
    fp16_linear,
    int4_bf16_linear,
    lean_tokens,
    speculative_greedy_tokens,
    transposed_linear,
)


def tiny_model(family: str = "llama", seed: int = 0):
    """A random LLaMA (grouped-query heads) or Qwen2 (q/k/v biases) small enough to test in milliseconds."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    shape = dict(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=False)
    if family == "llama":
        model = LlamaForCausalLM(LlamaConfig(**shape, rope_theta=1000.0))
    else:
        model = Qwen2ForCausalLM(Qwen2Config(**shape))
    return model.eval()


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_prefill_steps_and_chunks_give_transformers_logits(family):
    model = tiny_model(family)
    ids = torch.randint(0, 97, (1, 14), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = model(ids).logits[0]
    lean = LeanLlama(model)
    lean.cache = PreallocatedKVCache(2, 2, 16, capacity=4)  # small, so the cache has to grow on the way
    pieces = [ids[0, :5], ids[0, 5:6], ids[0, 6:7], ids[0, 7:11], ids[0, 11:12], ids[0, 12:]]
    got = torch.cat([lean.step(piece) for piece in pieces])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert lean.cache.length == 14 and lean.cache.k.size(2) >= 14


def test_rewind_forgets_tokens():
    model = tiny_model()
    lean = LeanLlama(model)
    lean.step([1, 2, 3])
    lean.step([50, 60])
    lean.rewind(2)
    after_rewind = lean.step([4, 5])
    lean.reset()
    fresh = lean.step([1, 2, 3, 4, 5])[-2:]
    torch.testing.assert_close(after_rewind, fresh, atol=1e-6, rtol=1e-6)


def test_weight_formats():
    torch.manual_seed(0)
    w = (torch.randn(96, 64) * 0.05).bfloat16().float()  # bf16-valued, like SmolLM2's weights
    x = torch.randn(3, 64)
    exact = x @ w.T
    torch.testing.assert_close(transposed_linear(w)(x), exact)
    torch.testing.assert_close(fp16_linear(w)(x), exact, atol=1e-5, rtol=1e-5)  # fp16 holds bf16 values
    int4 = int4_bf16_linear(w)(x)
    relative = (int4 - exact).norm() / exact.norm()
    assert 0 < relative < 0.1  # an approximation: close, not equal


def test_speculative_decoding_returns_the_targets_greedy_tokens_whatever_the_draft():
    target = LeanLlama(tiny_model(seed=0))
    prompt = [5, 17, 42]
    expected = list(lean_tokens(target, prompt, 24))
    # A draft from a different random model: its proposals are mostly rejected; the output may not change.
    bad = LeanLlama(tiny_model(seed=1))
    stats: dict = {}
    out = list(speculative_greedy_tokens(target, bad, prompt, 24, lookahead=4, min_margin=0.0, stats=stats))
    assert out == expected
    assert stats["tokens"] == 24 and stats["target_calls"] > 24 // 5 + 1
    # A perfect draft (the same model): up to lookahead + 1 tokens per target call.
    same = LeanLlama(tiny_model(seed=0))
    stats = {}
    out = list(speculative_greedy_tokens(target, same, prompt, 24, lookahead=4, min_margin=0.0, stats=stats))
    assert out == expected
    assert stats["target_calls"] <= 24 // 5 + 1


def test_speculative_decoding_stops_at_eos():
    target = LeanLlama(tiny_model())
    prompt = [5, 17, 42]
    free = list(lean_tokens(target, prompt, 12))
    eos = free[5]
    expected = free[: free.index(eos) + 1]
    draft = LeanLlama(tiny_model())
    assert list(speculative_greedy_tokens(target, draft, prompt, 12, {eos}, lookahead=4, min_margin=0.0)) == expected
    assert list(speculative_greedy_tokens(target, draft, prompt, 0)) == list(lean_tokens(target, prompt, 0)) == []


@pytest.mark.model
def test_fast_decoder_gives_fp32_generates_greedy_answers(smollm2):
    """Speculative decoding, the chat's path where it measures faster: the same tokens as plain fp32 generate."""
    model, tokenizer = smollm2
    fast = FastDecoder(model)
    assert fast.draft is not None
    eos = eos_ids(model, tokenizer)
    calls = tokens = 0
    for prompt in FIXED_PROMPTS:
        ids = chat_input_ids(tokenizer, prompt)
        with torch.inference_mode():
            ref = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=24,
                                 do_sample=False)[0, ids.size(1):].tolist()
        assert list(fast.tokens(ids[0].tolist(), 24, eos)) == ref, prompt
        calls, tokens = calls + fast.stats["target_calls"], tokens + fast.stats["tokens"]
    assert tokens / calls > 2  # the 4-bit draft's proposals are mostly accepted


@pytest.mark.model
def test_fast_decoder_samples_reproducibly(smollm2):
    model, tokenizer = smollm2
    fast = FastDecoder(model)
    ids = chat_input_ids(tokenizer, "Tell me a story.")[0].tolist()

    def sample(seed):
        return list(fast.tokens(ids, 12, temperature=1.0, top_p=0.9, generator=torch.Generator().manual_seed(seed)))

    assert sample(0) == sample(0)
    assert sample(0) != sample(1)
