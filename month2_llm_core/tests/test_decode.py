"""Graded (m2_t3): a KV-cache greedy decode loop over the real SmolLM2, against generate()."""

import pytest
import torch

from month2_llm_core.inference import chat_input_ids


def _generate(model, ids, n, eos=None):
    with torch.inference_mode():
        return model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n,
                              do_sample=False, eos_token_id=eos, pad_token_id=2)


@pytest.mark.model
@pytest.mark.m2_t3
@pytest.mark.parametrize("prompt", ["Write a Python function that adds two numbers.", "Name three colours."])
def test_greedy_decode_equals_generate(impl, smollm2, prompt):
    model, tokenizer = smollm2
    ids = chat_input_ids(tokenizer, prompt)
    ours = impl.greedy_decode(model, ids, 12)
    assert torch.equal(ours, _generate(model, ids, 12)), tokenizer.decode(ours[0, ids.size(1):])


@pytest.mark.model
@pytest.mark.m2_t3
def test_greedy_decode_stops_after_eos(impl, smollm2):
    model, tokenizer = smollm2
    ids = chat_input_ids(tokenizer, "What is the capital of France?")
    ours = impl.greedy_decode(model, ids, 30, eos_token_id=tokenizer.eos_token_id)
    theirs = _generate(model, ids, 30, eos=tokenizer.eos_token_id)
    assert torch.equal(ours, theirs)
    assert ours[0, -1].item() == tokenizer.eos_token_id and ours.size(1) < ids.size(1) + 30


@pytest.mark.model
@pytest.mark.m2_t3
def test_greedy_decode_feeds_one_token_per_step(impl, smollm2):
    """With the cache, only the prompt is processed as a whole; each step sees one new token."""
    model, tokenizer = smollm2
    ids = chat_input_ids(tokenizer, "Count to five.")
    lengths = []

    def record(module, args, kwargs):
        x = kwargs.get("input_ids", args[0] if args else None)
        lengths.append(x.size(1))

    handle = model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        impl.greedy_decode(model, ids, 6)
    finally:
        handle.remove()
    assert lengths[0] == ids.size(1) and lengths[1:] == [1] * (len(lengths) - 1) and len(lengths) in (6, 7)
