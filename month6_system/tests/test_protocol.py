"""The SSE encoder (graded m6_t3), read back with the SSE rules, and the OpenAI request validator (graded
m6_t4) on the requests OpenAI refuses."""

from __future__ import annotations

import pytest

from month6_system.protocol import APIError, ChatCompletionRequest
from month6_system.sse import parse_sse

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}


@pytest.mark.m6_t3
def test_an_event_is_one_data_line_and_a_blank_line(impl):
    event = impl.sse_event({"text": "two\nlines", "n": 1, "é": "ü"})
    assert event.startswith("data: ") and event.endswith("\n\n") and event.count("\n") == 2
    assert parse_sse(event + "data: [DONE]\n\n") == [{"text": "two\nlines", "n": 1, "é": "ü"}]


@pytest.mark.m6_t3
def test_a_stream_ends_with_done_even_when_empty(impl):
    payloads = [{"i": i, "delta": f"part {i}\n"} for i in range(5)]
    text = "".join(impl.sse_stream(iter(payloads)))
    assert parse_sse(text) == payloads and text.endswith("data: [DONE]\n\n")
    assert "".join(impl.sse_stream([])) == "data: [DONE]\n\n"


def request(**body) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                                                 **body})


@pytest.mark.m6_t4
def test_valid_requests_pass(impl):
    impl.check_chat_request(request())
    impl.check_chat_request(request(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "get_weather"}},
                                    stream=True, stream_options={"include_usage": True}))
    impl.check_chat_request(request(messages=[{"role": "user", "content": "weather?"},
                                              {"role": "assistant", "content": None, "tool_calls": [CALL]},
                                              {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
                                              {"role": "user", "content": "thanks"}], tools=[TOOL]))


@pytest.mark.m6_t4
@pytest.mark.parametrize("body, param", [
    ({"tools": [TOOL, TOOL]}, "tools"),
    ({"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "send_email"}}}, "tool_choice"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "call_9", "content": "y"}]},
     "messages[1]"),
    ({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [CALL]},
                   {"role": "user", "content": "and?"}], "tools": [TOOL]}, "messages[2]"),
    ({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [CALL]}], "tools": [TOOL]},
     "messages[2]"),
    ({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [CALL]},
                   {"role": "tool", "tool_call_id": "call_1", "content": "y"},
                   {"role": "tool", "tool_call_id": "call_1", "content": "again"}], "tools": [TOOL]}, "messages[3]"),
])
def test_requests_openai_refuses_are_400_naming_the_parameter(impl, body, param):
    with pytest.raises(APIError) as err:
        impl.check_chat_request(request(**body))
    assert err.value.status == 400 and err.value.body()["error"]["param"] == param


def test_a_tool_or_response_schema_that_is_not_json_schema_is_refused():
    from pydantic import ValidationError

    bad = {"type": "function", "function": {"name": "f", "parameters": {"type": "objekt"}}}
    with pytest.raises(ValidationError, match="not a valid JSON schema"):
        request(tools=[bad])
    with pytest.raises(ValidationError, match="not a valid JSON schema"):
        request(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 3}}})
