"""Graded (m2_t5): SmolLM2's ChatML template by hand, against tokenizer.apply_chat_template."""

import pytest

CONVERSATIONS = [
    [{"role": "user", "content": "Hi!"}],
    [{"role": "system", "content": "You answer in French."}, {"role": "user", "content": "Hello"}],
    [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"},
     {"role": "user", "content": "And with\nnewlines and <tags>?"}],
    [{"role": "system", "content": ""}, {"role": "user", "content": "empty system"},
     {"role": "assistant", "content": "ok"}],
]


@pytest.mark.model
@pytest.mark.m2_t5
@pytest.mark.parametrize("generation_prompt", [True, False])
@pytest.mark.parametrize("index", range(len(CONVERSATIONS)))
def test_apply_chatml_equals_the_tokenizer_template(impl, smollm2_tokenizer, index, generation_prompt):
    messages = CONVERSATIONS[index]
    expected = smollm2_tokenizer.apply_chat_template(messages, tokenize=False,
                                                     add_generation_prompt=generation_prompt)
    assert impl.apply_chatml(messages, add_generation_prompt=generation_prompt) == expected


@pytest.mark.model
@pytest.mark.m2_t5
def test_apply_chatml_tokenizes_to_the_same_ids(impl, smollm2_tokenizer):
    messages = CONVERSATIONS[2]
    ids = smollm2_tokenizer(impl.apply_chatml(messages, True), add_special_tokens=False)["input_ids"]
    assert ids == smollm2_tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                        return_dict=True)["input_ids"]
