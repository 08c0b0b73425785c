"""The tool-call task without a model: generator, splits, strict parser, scoring."""

import json
import re

import pytest

from month2_llm_core.toolcalls import (
    CITIES,
    DOCUMENT_TOPICS,
    MEMORY_TOPICS,
    TEMPLATES,
    TOOLS,
    calls_equal,
    exact_match,
    extract_tool_call,
    make_examples,
    openai_tools,
    parse_tool_call,
    system_prompt,
    validate_call,
)


def test_generator_is_deterministic_and_prefix_stable():
    a = make_examples("train", 200, seed=3)
    assert a == make_examples("train", 200, seed=3)
    assert make_examples("train", 80, seed=3) == a[:80]
    assert make_examples("train", 200, seed=4) != a
    assert len({e.request for e in a}) == 200  # distinct requests


def test_tools_take_turns_and_every_call_is_valid():
    examples = make_examples("train", 400) + make_examples("heldout", 100)
    for i, e in enumerate(examples[:400]):
        assert e.call["name"] == TOOLS[i % len(TOOLS)].name
    for e in examples:
        assert validate_call(e.call) == [], e
        assert parse_tool_call(e.answer) == e.call  # the training target parses back to the call


def test_splits_share_no_template_no_topic_and_no_request():
    for tool, by_split in TEMPLATES.items():
        assert not set(by_split["train"]) & set(by_split["heldout"]), tool
    assert not set(DOCUMENT_TOPICS["train"]) & set(DOCUMENT_TOPICS["heldout"])
    assert not set(MEMORY_TOPICS["train"]) & set(MEMORY_TOPICS["heldout"])
    train, heldout = make_examples("train", 800), make_examples("heldout", 100)
    assert {e.template for e in train} <= {t for by in TEMPLATES.values() for t in by["train"]}
    assert {e.template for e in heldout} <= {t for by in TEMPLATES.values() for t in by["heldout"]}
    assert not {e.request for e in train} & {e.request for e in heldout}
    train_queries = {e.call["arguments"].get("query") for e in train} - {None}
    heldout_queries = {e.call["arguments"].get("query") for e in heldout} - {None}
    assert heldout_queries and not train_queries & heldout_queries
    # The one slot the splits share on purpose: the closed set of cities / IANA names.
    assert {e.call["arguments"]["timezone"] for e in heldout if "timezone" in e.call["arguments"]} <= set(
        CITIES.values()
    )


def test_calculator_expression_follows_the_request():
    for e in make_examples("train", 400)[::4]:
        expr = e.call["arguments"]["expression"]
        numbers = re.findall(r"\d+(?:\.\d+)?", e.request)
        assert re.findall(r"\d+(?:\.\d+)?", expr) == numbers + (["2"] if "squared" in e.request else [])


def test_search_top_k_default_and_number_words():
    searches = [e for e in make_examples("train", 800) if e.call["name"] == "search_documents"]
    without_number = [e for e in searches if "{k}" not in e.template]
    assert without_number and all(e.call["arguments"]["top_k"] == 5 for e in without_number)
    assert any(" three " in e.request and e.call["arguments"]["top_k"] == 3 for e in searches)
    assert any(" 3 " in e.request and e.call["arguments"]["top_k"] == 3 for e in searches)


def test_strict_parser_accepts_only_one_bare_call():
    call = {"name": "calculator", "arguments": {"expression": "1 + 2"}}
    text = json.dumps(call)
    assert parse_tool_call(text) == call
    assert parse_tool_call(f"  {text}\n") == call  # surrounding whitespace is fine
    for bad in (
        f"```json\n{text}\n```",  # code fence
        f"Sure! {text}",  # prose before
        f"{text} Done.",  # text after
        f"{text}{text}",  # two objects
        '{"name": "calculator"}',  # no arguments
        '{"name": "calculator", "arguments": {}, "id": 1}',  # extra key
        '{"name": 3, "arguments": {}}',  # name not a string
        '{"name": "calculator", "arguments": "1 + 2"}',  # arguments not an object
        "[1, 2]",
        "{'name': 'calculator', 'arguments': {}}",  # Python, not JSON
        "",
        "{",
    ):
        assert parse_tool_call(bad) is None, bad


def test_lenient_parser_finds_the_call_inside_prose():
    call = {"name": "recall_memory", "arguments": {"query": "my shoe size"}}
    assert extract_tool_call(f"Here you go:\n```json\n{json.dumps(call)}\n```") == call
    assert extract_tool_call('{"a": 1} then ' + json.dumps(call)) == call
    assert extract_tool_call("no json here {oops") is None


def test_scoring_is_exact_on_name_and_arguments():
    target = {"name": "search_documents", "arguments": {"query": "refunds", "top_k": 3}}
    reordered = '{"arguments": {"top_k": 3, "query": "refunds"}, "name": "search_documents"}'
    assert calls_equal(parse_tool_call(reordered), target)  # key order does not matter
    near_misses = [
        '{"name": "search_documents", "arguments": {"query": "refunds", "top_k": 3.0}}',  # float, not int
        '{"name": "search_documents", "arguments": {"query": "refunds", "top_k": "3"}}',  # string, not int
        '{"name": "search_documents", "arguments": {"query": "Refunds", "top_k": 3}}',  # case
        '{"name": "search_documents", "arguments": {"query": "refunds"}}',  # missing argument
        '{"name": "recall_memory", "arguments": {"query": "refunds", "top_k": 3}}',  # wrong tool
    ]
    assert not any(calls_equal(parse_tool_call(t), target) for t in near_misses)
    assert not calls_equal(None, target)
    predictions = [reordered, *near_misses, "Sure: " + reordered]
    assert exact_match(predictions, [target] * 7) == pytest.approx(1 / 7)
    assert exact_match(predictions, [target] * 7, strict=False) == pytest.approx(2 / 7)
    with pytest.raises(ValueError):
        exact_match(predictions, [target])


def test_validate_call_reports_problems():
    assert validate_call({"name": "nope", "arguments": {}}) == ["unknown tool 'nope'"]
    problems = validate_call({"name": "search_documents", "arguments": {"query": 1, "top_k": True, "x": 0}})
    assert len(problems) == 3  # query mistyped, top_k a bool, x unexpected
    assert validate_call({"name": "get_current_time", "arguments": {}}) == ["missing argument 'timezone'"]


def test_prompt_lists_every_tool_and_its_arguments():
    prompt = system_prompt()
    for spec, tool in zip(TOOLS, openai_tools()):
        assert spec.signature() in prompt
        assert tool["function"]["parameters"]["required"] == list(spec.parameters["properties"])
