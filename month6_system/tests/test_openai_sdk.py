"""Conformance: the official openai SDK against the live server on loopback (scripted assistant), each test a
row of runs/month6/conformance.md. Both ways of streaming are used: plain iteration validates nothing, while
`client.chat.completions.stream()` fails on a chunk without `object` or a tool-call delta without `index`."""

from __future__ import annotations

import json

import numpy as np
import pytest

openai = pytest.importorskip("openai")

MODEL = "hybrid-assistant"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "the weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
TIME = {"type": "function", "function": {"name": "current_time", "parameters": {"type": "object", "properties": {}}}}
ANSWER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                 "required": ["city", "days"], "additionalProperties": False}


@pytest.fixture(scope="module")
def client(live_server):
    with openai.OpenAI(base_url=live_server.base_url, api_key="unused", max_retries=0, timeout=30) as c:
        yield c


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.mark.conformance("plain chat completion")
def test_plain(client):
    out = client.chat.completions.create(model=MODEL, messages=ask("hello there"))
    assert out.object == "chat.completion"
    assert out.choices[0].message.content == "You said: hello there"
    assert out.choices[0].finish_reason == "stop"
    assert out.usage.prompt_tokens == 2 and out.usage.completion_tokens == 4 and out.usage.total_tokens == 6


@pytest.mark.conformance("finish_reason length at max_tokens")
def test_max_tokens(client):
    out = client.chat.completions.create(model=MODEL, messages=ask("one two three four"), max_tokens=3)
    assert out.choices[0].message.content == "You said: one"
    assert out.choices[0].finish_reason == "length"


@pytest.mark.conformance("streaming: plain iteration, usage chunk")
def test_stream_iteration(client):
    chunks = list(client.chat.completions.create(model=MODEL, messages=ask("stream me please"), stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: stream me please"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 3 + 5


@pytest.mark.conformance("streaming: client.chat.completions.stream() helper")
def test_stream_helper(client):
    with client.chat.completions.stream(model=MODEL, messages=ask("helper stream")) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == "You said: helper stream"
    assert final.choices[0].message.content == "You said: helper stream"


@pytest.mark.conformance("tool_choice auto: calls a fitting tool")
def test_tool_choice_auto_calls(client):
    out = client.chat.completions.create(model=MODEL, messages=ask("what is the weather in Paris"),
                                         tools=[WEATHER, TIME], tool_choice="auto")
    choice = out.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}


@pytest.mark.conformance("tool_choice auto: no tool when none fits")
def test_tool_choice_auto_no_call(client):
    out = client.chat.completions.create(model=MODEL, messages=ask("write me a haiku"), tools=[WEATHER])
    assert out.choices[0].message.tool_calls is None
    assert out.choices[0].message.content == "You said: write me a haiku"


@pytest.mark.conformance("tool_choice none")
def test_tool_choice_none(client):
    out = client.chat.completions.create(model=MODEL, messages=ask("the weather in Rome"), tools=[WEATHER],
                                         tool_choice="none")
    assert out.choices[0].message.tool_calls is None and out.choices[0].finish_reason == "stop"


@pytest.mark.conformance("tool_choice required")
def test_tool_choice_required(client):
    out = client.chat.completions.create(model=MODEL, messages=ask("write me a haiku"), tools=[TIME, WEATHER],
                                         tool_choice="required")
    assert [c.function.name for c in out.choices[0].message.tool_calls] == ["current_time"]


@pytest.mark.conformance("tool_choice named function")
def test_tool_choice_named(client):
    out = client.chat.completions.create(
        model=MODEL, messages=ask("what time is it in Oslo"), tools=[TIME, WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    [call] = out.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Oslo"}


@pytest.mark.conformance("tool_choice naming an unknown function: 400")
def test_tool_choice_unknown_is_400(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=ask("hi"), tools=[WEATHER],
                                       tool_choice={"type": "function", "function": {"name": "nope"}})
    assert err.value.body["param"] == "tool_choice"


@pytest.mark.conformance("parallel_tool_calls")
def test_parallel_tool_calls(client):
    text = ask("the weather and the current time")
    both = client.chat.completions.create(model=MODEL, messages=text, tools=[WEATHER, TIME])
    one = client.chat.completions.create(model=MODEL, messages=text, tools=[WEATHER, TIME], parallel_tool_calls=False)
    assert [c.function.name for c in both.choices[0].message.tool_calls] == ["get_weather", "current_time"]
    assert len({c.id for c in both.choices[0].message.tool_calls}) == 2
    assert [c.function.name for c in one.choices[0].message.tool_calls] == ["get_weather"]


@pytest.mark.conformance("streamed tool-call deltas (stream helper)")
def test_stream_tool_calls(client):
    with client.chat.completions.stream(model=MODEL, messages=ask("weather in Lima"), tools=[WEATHER]) as stream:
        final = stream.get_final_completion()
    [call] = final.choices[0].message.tool_calls
    assert final.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Lima"}


@pytest.mark.conformance("client-defined tool round trip")
def test_client_tool_round_trip(client):
    messages = ask("what is the weather in Paris")
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    message = first.choices[0].message
    [call] = message.tool_calls
    result = f"sunny in {json.loads(call.function.arguments)['city']}"  # the client runs its own tool
    messages += [message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": result}]
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "The tool said: sunny in Paris"
    assert second.choices[0].finish_reason == "stop"


@pytest.mark.conformance("tool message with no matching tool_call id: 400")
def test_orphan_tool_message_is_400(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=[
            {"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "call_x", "content": "3"}])
    assert err.value.body["param"] == "messages[1]" and err.value.status_code == 400


@pytest.mark.conformance("response_format json_object")
def test_json_object(client):
    out = client.chat.completions.create(model=MODEL, messages=ask("json please"),
                                         response_format={"type": "json_object"})
    assert isinstance(json.loads(out.choices[0].message.content), dict)


@pytest.mark.conformance("response_format json_schema (SDK parse helper)")
def test_json_schema_parse(client):
    fmt = {"type": "json_schema", "json_schema": {"name": "trip", "schema": ANSWER_SCHEMA, "strict": True}}
    out = client.chat.completions.create(model=MODEL, messages=ask("a trip to Kyoto"), response_format=fmt)
    assert json.loads(out.choices[0].message.content) == {"city": "Kyoto", "days": 1}
    assert out.model_extra["trace"]["response_format"] == fmt  # passed through to the assistant as sent

    from pydantic import BaseModel

    class Trip(BaseModel):
        city: str
        days: int

    parsed = client.chat.completions.parse(model=MODEL, messages=ask("a trip to Lyon"), response_format=Trip)
    assert parsed.choices[0].message.parsed == Trip(city="Lyon", days=1)


@pytest.mark.conformance("assistant output failing the json_schema: an error, not a wrong answer")
def test_json_schema_violations_are_errors(client):
    fmt = {"type": "json_schema", "json_schema": {"name": "trip", "schema": ANSWER_SCHEMA}}
    for text in ("BREAK JSON", "WRONG SCHEMA"):
        with pytest.raises(openai.InternalServerError) as err:
            client.chat.completions.create(model=MODEL, messages=ask(text), response_format=fmt)
        assert err.value.body["code"] == "invalid_assistant_output"
    with pytest.raises(openai.APIError, match="does not validate"):  # streamed: an error event after the text
        list(client.chat.completions.create(model=MODEL, messages=ask("WRONG SCHEMA"), response_format=fmt,
                                            stream=True))


@pytest.mark.conformance("context window exceeded: 400 with token counts")
def test_context_window(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=ask("word " * 2000), max_tokens=100)
    assert err.value.body["code"] == "context_length_exceeded"
    assert "2048 tokens" in err.value.message and "2000 in the messages, 100 in the completion" in err.value.message


@pytest.mark.conformance("unknown model: 404")
def test_unknown_model(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-5", messages=ask("hi"))
    assert err.value.body["code"] == "model_not_found"


@pytest.mark.conformance("models list and retrieve")
def test_models(client):
    ids = [m.id for m in client.models.list()]
    assert ids == [MODEL, "all-MiniLM-L6-v2"]
    assert client.models.retrieve(MODEL).owned_by == "hybrid-ai-six-months"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


@pytest.mark.conformance("trace of a response: GET /v1/traces/{id}")
def test_trace(client, live_server):
    import httpx

    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=ask("trace me"))
    body = json.loads(raw.text)
    assert body["trace"]["assistant"] == "scripted"
    got = httpx.get(f"{live_server.url}/v1/traces/{body['trace_id']}").json()
    assert got == {"id": body["trace_id"], "object": "trace", "trace": body["trace"]}


@pytest.mark.conformance("embeddings (all-MiniLM-L6-v2, float and base64)")
def test_embeddings(client):
    from month5_rag.embeddings import load_embedder

    texts = ["The invoice is kept for ten years.", "Invoices are archived for a decade.", "A cat sat on a mat."]
    out = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts)  # the SDK asks for base64
    floats = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts[0], encoding_format="float")
    vectors = np.array([d.embedding for d in out.data])
    assert vectors.shape == (3, 384) and [d.index for d in out.data] == [0, 1, 2]
    np.testing.assert_allclose(vectors, load_embedder().embed_passages(texts), atol=1e-5)
    np.testing.assert_allclose(floats.data[0].embedding, vectors[0], atol=1e-6)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
    assert out.usage.prompt_tokens > 0
