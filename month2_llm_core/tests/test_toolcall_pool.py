"""The extended tool-call task without a model: tool lists per request, disjoint tool pools,
word problems, the "no tool" answer, OpenAI tool specs, the second evaluation set, the table's scoring."""

import json

import pytest

from month2_llm_core import toolcall_eval
from month2_llm_core.toolcall_pool import (
    HELDOUT_TOOLS,
    KINDS,
    NO_TOOL,
    SECOND_SET,
    TRAIN_TOOLS,
    TRAINED_TOOL_NAMES,
    WORD_PROBLEMS,
    example_kind,
    load_eval_set,
    make_mixed_examples,
)
from month2_llm_core.toolcalls import (
    NO_CALL_ANSWER,
    TOOLS,
    Example,
    ToolSpec,
    is_no_call,
    openai_tools,
    parse_answer,
    parse_tool_call,
    system_prompt,
    validate_call,
)

TRAIN, HELDOUT = make_mixed_examples("train", 900), make_mixed_examples("heldout", 100)


def test_mixed_generator_is_deterministic_and_prefix_stable():
    assert make_mixed_examples("train", 900) == TRAIN
    assert make_mixed_examples("train", 90) == TRAIN[:90]
    assert make_mixed_examples("train", 90, seed=1) != TRAIN[:90]
    with pytest.raises(ValueError):
        make_mixed_examples("test", 3)


def test_held_out_tools_never_appear_in_training_and_splits_share_no_template():
    heldout_names = {spec.name for spec, _, _ in HELDOUT_TOOLS}
    assert heldout_names.isdisjoint({spec.name for spec, _, _ in TRAIN_TOOLS} | {t.name for t in TOOLS})
    assert all(heldout_names.isdisjoint(t.name for t in e.tools) for e in TRAIN)  # not even as a distractor
    assert heldout_names.isdisjoint(e.call["name"] for e in TRAIN if e.call)
    assert {e.call["name"] for e in HELDOUT if e.call and example_kind(e) == "unseen tool"} == heldout_names
    assert {e.template for e in TRAIN}.isdisjoint(e.template for e in HELDOUT)
    assert {e.request for e in TRAIN}.isdisjoint(e.request for e in HELDOUT)
    assert set(WORD_PROBLEMS["train"]).isdisjoint(WORD_PROBLEMS["heldout"])
    assert set(NO_TOOL["train"][1]).isdisjoint(NO_TOOL["heldout"][1])


def test_every_example_lists_its_tool_and_every_call_validates_against_its_list():
    for e in TRAIN + HELDOUT:
        assert 1 <= len(e.tools) <= 5 and len({t.name for t in e.tools}) == len(e.tools)
        if e.call is None:
            assert e.answer == NO_CALL_ANSWER
        else:
            assert validate_call(e.call, e.tools) == [], e
            assert parse_tool_call(e.answer) == e.call
    kinds = [example_kind(e) for e in TRAIN[: len(KINDS)]]
    assert kinds.count("no tool") == 2 and kinds.count("training pool tool") == 2


def test_tool_not_in_the_list_means_no_call():
    missing = [e for e in TRAIN if e.call is None and e.template not in NO_TOOL["train"][0]]
    assert missing
    # e.g. a time request whose prompt does not list get_current_time: no call, because it is not listed
    assert any("time" in e.request.lower() and "get_current_time" not in {t.name for t in e.tools} for e in missing)


def test_word_problems_write_the_arithmetic_out():
    problems = {e.request: e.call["arguments"]["expression"] for e in TRAIN + HELDOUT
                if e.template in {t for t, _ in WORD_PROBLEMS["train"] + WORD_PROBLEMS["heldout"]}}
    assert len(problems) > 50
    for request, expression in problems.items():
        assert set(expression) <= set("0123456789*/"), (request, expression)
        numbers = [w for w in request.replace("%", " ").replace("?", " ").split() if w.isdigit()]
        assert all(n in expression for n in numbers), (request, expression)
    heldout = make_mixed_examples("heldout", 100)
    pct = next(e for e in heldout if e.request.startswith("Work out "))
    a, b = [int(w) for w in pct.request.rstrip(".").split() if w.isdigit()]
    assert pct.call["arguments"]["expression"] == f"{b}*{a}/100"


def test_no_tool_answer_parses_as_no_call_and_stays_apart_from_calls():
    assert is_no_call(NO_CALL_ANSWER) and is_no_call('  {"name": null}\n')
    assert parse_tool_call(NO_CALL_ANSWER) is None  # the strict call parser is unchanged
    assert parse_answer(NO_CALL_ANSWER) == ("none", None)
    assert parse_answer('{"name": "calculator", "arguments": {"expression": "1"}}')[0] == "call"
    for text in ('{"name": null, "arguments": {}}', "null", 'no tool: {"name": null}', "I can't help", ""):
        assert not is_no_call(text) and parse_answer(text) == ("invalid", None), text
    assert NO_CALL_ANSWER in system_prompt()
    for e in TRAIN:
        if e.call is None:
            assert parse_answer(e.answer) == ("none", None)


def test_toolspec_from_openai_round_trip():
    for tool, entry in zip(TOOLS, openai_tools()):
        assert ToolSpec.from_openai(entry) == tool
        assert ToolSpec.from_openai(entry["function"]) == tool  # the bare function object too
        assert ToolSpec.from_openai(json.loads(json.dumps(entry))).to_openai() == entry
    spec = ToolSpec.from_openai({"type": "function", "function": {"name": "ping"}})
    assert spec.parameters == {"type": "object", "properties": {}} and spec.signature() == "ping()"
    for bad in ({"type": "retrieval"}, {"type": "function", "function": {"description": "no name"}}):
        with pytest.raises(ValueError):
            ToolSpec.from_openai(bad)


def test_prompt_lists_exactly_the_requests_tools():
    from transformers import AutoTokenizer

    from shared.models import chat_model_path

    tokenizer = AutoTokenizer.from_pretrained(chat_model_path("smollm2"))
    from month2_llm_core.toolcalls import build_prompt

    client = ToolSpec.from_openai({"type": "function", "function": {
        "name": "flight_status", "description": "is a flight on time",
        "parameters": {"type": "object", "properties": {"flight_number": {"type": "string"}}}}})
    prompt = build_prompt(tokenizer, "Is BA117 on time?", [TOOLS[0], client])
    assert "- flight_status(flight_number: string): is a flight on time" in prompt
    assert "calculator(" in prompt and "search_documents" not in prompt.split("Tools:")[1]
    assert build_prompt(tokenizer, "hi") == build_prompt(tokenizer, "hi", TOOLS)  # default: the built-ins


def test_second_set_loads_and_every_entry_validates_against_its_schema():
    examples = load_eval_set(SECOND_SET)
    assert 60 <= len(examples) <= 100
    kinds = [example_kind(e) for e in examples]
    assert kinds.count("no tool") >= 15 and kinds.count("unseen tool") >= 15 and kinds.count("built-in") >= 20
    assert len({e.request for e in examples}) == len(examples)
    for e in examples:
        if e.call is not None:
            assert validate_call(e.call, e.tools) == [], e
            assert e.call["name"] not in TRAINED_TOOL_NAMES or example_kind(e) != "unseen tool"
    # Phrased unlike the generator: no request of the second set is one the generator makes.
    assert {e.request for e in examples}.isdisjoint(e.request for e in TRAIN + HELDOUT)
    assert any(e.request == "What is 15 percent of 240?" and e.call["arguments"]["expression"] == "240*15/100"
               for e in examples)


def test_load_eval_set_rejects_an_unknown_tool(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"request": "x", "tools": ["no_such_tool"], "call": None}) + "\n")
    with pytest.raises(ValueError, match="no_such_tool"):
        load_eval_set(path)


def test_table_scoring_on_hand_made_answers():
    calc = TOOLS[0]
    weather = next(spec for spec, _, _ in HELDOUT_TOOLS if spec.name == "get_weather")
    examples = [
        Example("2+2", {"name": "calculator", "arguments": {"expression": "2 + 2"}}, "t", (calc,)),
        Example("haiku", None, "t", (calc,)),
        Example("rain in Oslo?", {"name": "get_weather", "arguments": {"city": "Oslo"}}, "t", (calc, weather)),
        Example("rain in Rome?", {"name": "get_weather", "arguments": {"city": "Rome"}}, "t", (calc, weather)),
        Example("hello", None, "t", (weather,)),
    ]
    answers = [
        '{"name": "calculator", "arguments": {"expression": "2 + 2"}}',  # right
        '{"name": null}',  # right: no tool
        '{"name": "get_weather", "arguments": {"city": "Oslo"}}',  # right, unseen tool
        '{"name": "get_weather", "arguments": {"city": "rome"}}',  # right tool, wrong argument
        '{"name": "get_weather", "arguments": {"city": "hello"}}',  # a call where none fits
    ]
    s = toolcall_eval.score(answers, examples)
    row = toolcall_eval.table_row(s, examples, answers)
    assert row == {"n": 5, "exact_match": 3 / 5, "tool_choice": 4 / 5, "arguments": 2 / 3,
                   "no_tool": 1 / 2, "unseen_tools": 1 / 2}
    assert s["per_tool"] == {"calculator": 1.0, "(no tool)": 0.5, "get_weather": 0.5}
    assert s["valid_json"] == 1.0
    assert toolcall_eval.chosen_tool("prose") is None
    table = toolcall_eval.format_table([{"adapter": "a/toolcall-lora", "set": "second", **row}])
    assert "| toolcall-lora | second | 5 | 60% | 80% | 67% | 50% | 50% |" in table
    with pytest.raises(ValueError):
        toolcall_eval.score(answers[:2], examples)
