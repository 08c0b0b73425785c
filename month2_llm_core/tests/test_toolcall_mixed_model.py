"""The mixed-task adapter (month2_llm_core/adapters/toolcall-mixed-lora) on the issue's own examples (no tool
for a haiku or a greeting, a word problem written out as arithmetic) and on the second set's requests for tools
it never saw, scored like `eval-toolcalls --table true` (measured there: 33% exact, against 0% before)."""

import pytest

from month2_llm_core.toolcall_eval import evaluate
from month2_llm_core.toolcall_model import MIXED_ADAPTER_DIR, generate_answers, load_toolcall_model
from month2_llm_core.toolcall_pool import example_kind, load_eval_set
from month2_llm_core.toolcalls import TOOLS, parse_answer


@pytest.mark.model
def test_mixed_adapter_calls_no_tool_writes_word_problems_out_and_uses_unseen_tools():
    model, tokenizer = load_toolcall_model(MIXED_ADAPTER_DIR)
    requests = ["write me a haiku about autumn", "hi, how are you?", "What is 15 percent of 240?"]
    answers = [parse_answer(a) for a in generate_answers(model, tokenizer, requests, 40, tools=TOOLS)]
    assert answers[0] == ("none", None) and answers[1] == ("none", None), answers
    assert answers[2] == ("call", {"name": "calculator", "arguments": {"expression": "240*15/100"}}), answers
    unseen = [e for e in load_eval_set() if example_kind(e) == "unseen tool"]
    scores, _ = evaluate(model, tokenizer, unseen)
    assert len(unseen) >= 15 and scores["exact_match"] >= 0.2, scores
    assert scores["tool_choice"] >= 0.5, scores  # the right unseen tool, arguments aside
