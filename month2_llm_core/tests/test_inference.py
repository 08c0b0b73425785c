"""Decoding: the verified int8 head, the fast CPU path, batching with left padding, streaming."""

import copy

import pytest
import torch
from torch import nn

from month2_llm_core.inference import (
    FIXED_PROMPTS,
    VerifiedInt8Head,
    chat_input_ids,
    eos_ids,
    generate_batch,
    optimize_for_cpu,
    stream_text,
    stream_tokens,
    stream_with_streamer,
)


def test_verified_head_returns_fp32_argmax_and_exact_max_scores():
    torch.manual_seed(0)
    head = nn.Linear(64, 3000, bias=False)
    fast = VerifiedInt8Head(head)
    hidden = torch.randn(200, 64) * 3
    with torch.inference_mode():
        exact, scores = head(hidden), fast(hidden)
    assert torch.equal(scores.argmax(-1), exact.argmax(-1))
    torch.testing.assert_close(scores.max(-1).values, exact.max(-1).values, atol=1e-4, rtol=1e-5)
    assert 0 < fast.recomputed < 200 * 3000 // 10  # a shortlist, not the whole vocabulary
    # Elsewhere the scores are int8 approximations: close, not equal.
    error = (scores - exact).abs()
    assert 0 < error.max() < 0.5


def test_verified_head_catches_a_close_call():
    """Two tokens whose exact scores differ by less than the int8 error: the right one wins."""
    torch.manual_seed(1)
    head = nn.Linear(64, 3000, bias=False)
    with torch.no_grad():
        head.weight.mul_(0.01)
        head.weight[3] = 0.5
        head.weight[7] = 0.5
        head.weight[7, 0] += 2e-3  # token 7 beats token 3 by 2e-3 for x = ones
    fast = VerifiedInt8Head(head, top=1)
    x = torch.ones(1, 64)
    with torch.inference_mode():
        assert head(x).argmax().item() == 7
        assert fast(x).argmax().item() == 7


def test_verified_head_refuses_shapes_the_int8_kernel_gets_wrong():
    with pytest.raises(ValueError, match="unreliable"):
        VerifiedInt8Head(nn.Linear(100, 3000, bias=False))


@pytest.mark.model
def test_fast_path_gives_the_same_greedy_tokens_as_fp32_generate(smollm2):
    model, tokenizer = smollm2
    fast = optimize_for_cpu(copy.deepcopy(model))
    eos = eos_ids(model, tokenizer)
    for prompt in FIXED_PROMPTS[:3]:
        ids = chat_input_ids(tokenizer, prompt)
        with torch.inference_mode():
            ref = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=20,
                                 do_sample=False)[0, ids.size(1):].tolist()
        assert list(stream_tokens(fast, ids, 20, eos)) == ref, prompt


@pytest.mark.model
def test_batched_generation_with_left_padding_matches_one_by_one(smollm2):
    model, tokenizer = smollm2
    prompts = ["What is the capital of France?", "Write a haiku about the sea, please, in English."]
    side = tokenizer.padding_side
    batched = generate_batch(model, tokenizer, prompts, 10)
    assert tokenizer.padding_side == side  # restored
    eos = eos_ids(model, tokenizer)
    for prompt, answer in zip(prompts, batched):
        single = tokenizer.decode(list(stream_tokens(model, chat_input_ids(tokenizer, prompt), 10, eos)),
                                  skip_special_tokens=True)
        assert answer == single


@pytest.mark.model
def test_streaming_joins_to_the_full_answer_and_never_splits_a_character(smollm2):
    model, tokenizer = smollm2
    text = "Café, naïve, 🙂 and 日本語."
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    pieces = list(stream_text(tokenizer, iter(ids)))
    assert "".join(pieces) == text and not any("\ufffd" in p for p in pieces)
    prompt = chat_input_ids(tokenizer, "Name the largest planet in the solar system.")
    streamed = "".join(stream_with_streamer(model, tokenizer, prompt, 12))
    ours = "".join(stream_text(tokenizer, stream_tokens(model, prompt, 12, eos_ids(model, tokenizer))))
    assert streamed == ours and len(ours) > 20


@pytest.mark.model
def test_sampling_is_seeded_and_differs_from_greedy(smollm2):
    model, tokenizer = smollm2
    ids = chat_input_ids(tokenizer, "Tell me a short story.")
    eos = eos_ids(model, tokenizer)

    def sample(seed):
        g = torch.Generator().manual_seed(seed)
        return list(stream_tokens(model, ids, 8, eos, temperature=1.0, top_p=0.95, generator=g))

    assert sample(1) == sample(1)
    greedy = list(stream_tokens(model, ids, 8, eos))
    assert any(sample(seed) != greedy for seed in range(4))
