"""The tool loop (graded m6_t2) against scripted policies: each way it stops, the runs it records, client
tools returned."""

from __future__ import annotations

import pytest

from month6_system.tools import ToolRun, client_tools, server_registry

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "weather in a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}


def scripted(*calls):
    """A policy that makes `calls` in order (one per step), then answers; records what it was shown."""
    seen: list[list[ToolRun]] = []

    def policy(request: str, runs: list[ToolRun]):
        seen.append(runs)
        return calls[len(runs)] if len(runs) < len(calls) else None
    policy.seen = seen
    return policy


def calc(expression: str) -> dict:
    return {"name": "calculator", "arguments": {"expression": expression}}


@pytest.mark.m6_t2
def test_runs_calls_in_order_then_answers_and_shows_the_policy_each_result(impl):
    policy = scripted(calc("2+3"), calc("5*7"))
    observed = []
    result = impl.run_tool_loop("two sums", policy, server_registry(), on_run=observed.append)
    assert result.stopped == "answer"
    assert [r.result["result"] for r in result.runs] == ["5", "35"] and observed == result.runs
    assert [len(runs) for runs in policy.seen] == [0, 1, 2]
    assert policy.seen[2][0].result["result"] == "5"


@pytest.mark.m6_t2
def test_stops_at_max_steps(impl):
    result = impl.run_tool_loop("x", scripted(calc("1+1"), calc("2+2"), calc("3+3")), server_registry(), max_steps=2)
    assert result.stopped == "max_steps" and len(result.runs) == 2


@pytest.mark.m6_t2
def test_a_repeated_call_is_a_loop_and_is_not_run_again(impl):
    result = impl.run_tool_loop("x", scripted(calc("1+1"), calc("1+1"), calc("9+9")), server_registry())
    assert result.stopped == "repeated_call" and len(result.runs) == 1
    assert result.refused_call == calc("1+1")


@pytest.mark.m6_t2
def test_an_invalid_call_is_refused_with_its_problems(impl):
    result = impl.run_tool_loop("x", scripted({"name": "calculator", "arguments": {"expr": "1"}}), server_registry())
    assert result.stopped == "invalid_call" and result.runs == [] and "expression" in result.problems[0]
    unknown = impl.run_tool_loop("x", scripted({"name": "launch", "arguments": {}}), server_registry())
    assert unknown.stopped == "invalid_call" and unknown.problems == ["unknown tool 'launch'"]


@pytest.mark.m6_t2
def test_a_client_tool_call_is_returned_not_run(impl):
    registry = server_registry()
    for tool in client_tools([WEATHER]):
        registry.add(tool)
    call = {"name": "get_weather", "arguments": {"city": "Oslo"}}
    result = impl.run_tool_loop("weather?", scripted(calc("2*2"), call), registry)
    assert result.stopped == "client_tool" and result.client_call == call
    assert [r.name for r in result.runs] == ["calculator"]


@pytest.mark.m6_t2
def test_a_failing_tool_is_a_result_the_policy_sees(impl):
    policy = scripted(calc("1/0"))
    result = impl.run_tool_loop("x", policy, server_registry())
    assert result.stopped == "answer" and not result.runs[0].ok and "error" in result.runs[0].result


@pytest.mark.m6_t2
def test_max_steps_must_be_positive(impl):
    with pytest.raises(ValueError, match="max_steps"):
        impl.run_tool_loop("x", scripted(), server_registry(), max_steps=0)
