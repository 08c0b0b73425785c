"""The generation batcher on the real mixture: answers decoded together, each row with its own expert's
adapter, equal token for token to each answered alone; a client that stops reading frees its row."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack

import pytest

from month2_llm_core.chat import Sampling
from month4_moe.experts import GENERAL

pytestmark = pytest.mark.model
PROMPTS = [("math", "What is 12 times 7?"), ("text", "Write a haiku about the sea."), (GENERAL, "Say hello to Ana."),
           ("code", "Write a Python function that adds two numbers."), ("chat", "How are you today?")]


@pytest.fixture(scope="module")
def mixture():
    """The assistant's mixture: the four experts and the tool-call adapter on one SmolLM2."""
    from month2_llm_core.toolcall_model import MIXED_ADAPTER_DIR
    from month4_moe.experts import ADAPTERS_DIR, DOMAINS, MixtureOfAdapters
    from month6_system.agent import TOOLCALL_ADAPTER
    from shared.models import load_chat_model

    base, tokenizer = load_chat_model("smollm2", progress=False)
    adapters = {d: ADAPTERS_DIR / d for d in DOMAINS} | {TOOLCALL_ADAPTER: MIXED_ADAPTER_DIR}
    return MixtureOfAdapters.from_base(base, tokenizer, adapters)


def messages(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def run_together(batcher, calls) -> None:
    """Each call on its own thread, all of them in flight (`turn`) before the first reaches the batcher."""
    with ExitStack() as turns:
        for _ in calls:
            turns.enter_context(batcher.turn())
        threads = [threading.Thread(target=call) for call in calls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)


def test_a_lone_request_does_not_wait(mixture):
    from month6_system.batching import GenerationBatcher

    batcher = GenerationBatcher(mixture, max_batch=8, wait_s=30.0)
    start = time.perf_counter()
    with batcher.turn():
        "".join(batcher.stream("math", messages("What is 12 times 7?"), Sampling(max_new_tokens=4)))
    assert time.perf_counter() - start < 10  # not the 30 s a batch may wait for requests in flight


def test_a_mixed_batch_equals_each_answer_alone(mixture):
    from month6_system.batching import GenerationBatcher

    batcher = GenerationBatcher(mixture, max_batch=8, wait_s=0.5)
    sampling = Sampling(max_new_tokens=24)
    alone = {prompt: "".join(mixture.backend(prompt[0]).stream(messages(prompt[1]), sampling)) for prompt in PROMPTS}
    together: dict[tuple[str, str], str] = {}

    def ask(prompt: tuple[str, str]) -> None:
        together[prompt] = "".join(batcher.stream(prompt[0], messages(prompt[1]), sampling))

    run_together(batcher, [lambda prompt=prompt: ask(prompt) for prompt in PROMPTS])
    assert batcher.batch_sizes == {len(PROMPTS): 1}  # one batch of all five
    assert together == alone  # left padding, masks and per-row adapters change no token


def test_batched_tool_decisions_equal_month_2s_generate_answers(mixture):
    from month2_llm_core.toolcalls import TOOLS
    from month6_system.agent import ToolCaller
    from month6_system.batching import GenerationBatcher

    requests = ["What is 15 percent of 240?", "What time is it in Tokyo?", "Write a haiku about the sea.",
                "Search the documents for the travel policy."]
    alone = [ToolCaller(mixture)._answer(r, tuple(TOOLS)) for r in requests]
    batched = ToolCaller(mixture, batcher=GenerationBatcher(mixture, max_batch=8, wait_s=0.5))
    together: dict[str, str] = {}
    run_together(batched.batcher, [lambda r=r: together.__setitem__(r, batched._answer(r, tuple(TOOLS)))
                                   for r in requests])
    assert [together[r] for r in requests] == alone
    assert batched.batcher.batch_sizes == {len(requests): 1}


def test_a_client_that_stops_reading_frees_its_row(mixture):
    from month6_system.batching import GenerationBatcher

    batcher = GenerationBatcher(mixture, max_batch=4, wait_s=0.0)
    pieces = batcher.stream("text", messages("Tell me a long story about a dragon."), Sampling(max_new_tokens=200))
    first = next(pieces)
    pieces.close()  # the client went away after one piece
    assert first
    answer = "".join(batcher.stream("math", messages("What is 12 times 7?"), Sampling(max_new_tokens=16)))
    assert "84" in answer  # the worker is free again, the next batch ran
