"""The server's limits against bad and abusive input, on the live server: hand-written bad requests get a
clear 4xx in OpenAI's error shape (never a 500), bodies over the limit a 413, a key over its rate a 429
with Retry-After (which the official SDK honours), no CORS headers unless configured, and a crash inside
the assistant a 500 that names no detail. Plus the rate limiter and the generation deadline themselves."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from month6_system.agent import Deadline
from month6_system.limits import RateLimiter
from month6_system.tests.conftest import ScriptedAssistant
from month6_system.turn import Turn, TurnResult

openai = pytest.importorskip("openai")
MODEL = "hybrid-assistant"
SECRET = "/srv/secret/config.toml password=hunter2"
server_settings = {"max_body_bytes": 4096}


class CrashingAssistant(ScriptedAssistant):
    """The scripted assistant, except that "CRASH" in the message raises an error whose text must not leak."""

    def run(self, turn: Turn) -> TurnResult:
        if "CRASH" in (turn.messages[-1].get("content") or ""):
            raise RuntimeError(f"could not open {SECRET}")
        return super().run(turn)


server_assistant = CrashingAssistant


def chat(content: str = "hello", **extra) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], **extra}


@pytest.fixture(scope="module")
def http(live_server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        yield client


def assert_error(response: httpx.Response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param is not None:
        assert error["param"] == param, error
    return error


BAD_BODIES = [
    pytest.param(b'{"model": "hybrid-assistant", "messages": [', None, id="invalid JSON"),
    pytest.param(b'{"model": "hybrid-assistant", "messages": [{"role": "user", "content": "\xff\xfe caf\xe9"}]}',
                 None, id="invalid UTF-8"),
    pytest.param(b"[]", None, id="a JSON array, not an object"),
    pytest.param(b"null", None, id="JSON null"),
    pytest.param(json.dumps(chat(messages="hello")).encode(), "messages", id="messages a string"),
    pytest.param(json.dumps({"model": MODEL, "messages": []}).encode(), "messages", id="empty messages"),
    pytest.param(json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode(), "model", id="no model"),
    pytest.param(json.dumps(chat(temperature="hot")).encode(), "temperature", id="temperature a string"),
    pytest.param(json.dumps(chat(max_tokens=-1)).encode(), "max_tokens", id="negative max_tokens"),
    pytest.param(json.dumps(chat(stream=0)).encode(), "stream", id="stream an int"),
    pytest.param(json.dumps({"model": MODEL, "messages": [{"role": "wizard", "content": "hi"}]}).encode(),
                 None, id="unknown role"),
    pytest.param(json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"},
                                                          {"role": "tool", "tool_call_id": "call_x",
                                                           "content": "42"}]}).encode(),
                 "messages[1]", id="a tool message with no matching call"),
    pytest.param(json.dumps(chat(tools=[{"type": "function", "function": {"name": "bad name!"}}])).encode(),
                 None, id="a tool name OpenAI refuses"),
]


@pytest.mark.conformance("bad input: 400 in OpenAI's error shape, never a 500")
@pytest.mark.parametrize("body,param", BAD_BODIES)
def test_bad_chat_bodies_are_400_in_openais_error_shape(http, body, param):
    response = http.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
    error = assert_error(response, 400, param)
    assert error["type"] == "invalid_request_error"


def test_other_bad_requests_are_clear_4xx(http):
    assert assert_error(http.post("/v1/chat/completions", json=chat(model="gpt-9")), 404, "model")["code"] == \
        "model_not_found"
    assert_error(http.get("/v1/chat/completions"), 405)
    assert_error(http.get("/v1/no-such-route"), 404)
    assert_error(http.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": [1, 2]}), 400, "input[0]")
    assert_error(http.delete("/v1/documents/..%2F..%2Fetc%2Fpasswd"), 404)
    assert_error(http.post("/v1/documents", files={"files": (".hidden", b"x")}), 400, "files")


@pytest.mark.conformance("request body over the limit: 413")
def test_a_body_over_the_limit_is_413_by_length_and_when_chunked(http):
    big = json.dumps(chat("word " * 2000)).encode()
    assert len(big) > server_settings["max_body_bytes"]
    assert assert_error(http.post("/v1/chat/completions", content=big,
                                  headers={"Content-Type": "application/json"}), 413)["code"] == "request_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts the bytes as they come
        for start in range(0, len(big), 1000):
            yield big[start:start + 1000]

    chunked = http.post("/v1/chat/completions", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in chunked.request.headers
    assert assert_error(chunked, 413)["code"] == "request_too_large"
    upload = http.post("/v1/documents", files={"files": ("big.txt", b"x" * 5000)})
    assert_error(upload, 413)
    assert http.post("/v1/chat/completions", json=chat("small")).status_code == 200  # the server is fine


@pytest.mark.conformance("a crash in the assistant: 500 without its message or a stack trace")
def test_a_crash_is_a_500_that_names_no_detail(http):
    response = http.post("/v1/chat/completions", json=chat("CRASH now"))
    error = assert_error(response, 500)
    assert error["type"] == "server_error" and "RuntimeError" in error["message"]
    for leaked in ("hunter2", "/srv/secret", "Traceback", "agent.py", 'File "'):
        assert leaked not in response.text
    with http.stream("POST", "/v1/chat/completions", json=chat("CRASH now", stream=True)) as stream:
        text = "".join(stream.iter_text())
    assert stream.status_code == 200 and "RuntimeError" in text and "hunter2" not in text
    assert text.rstrip().endswith("data: [DONE]")


@pytest.mark.conformance("CORS closed by default; open only to configured origins")
def test_cors_is_closed_by_default_and_open_only_to_configured_origins(http, tmp_path):
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    assert "access-control-allow-origin" not in http.options("/v1/chat/completions", headers=preflight).headers
    response = http.post("/v1/chat/completions", json=chat(), headers={"Origin": "https://evil.example"})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers

    with server(tmp_path, cors_origins=["https://intranet.example"]) as (url, _):
        with httpx.Client(base_url=url, timeout=30) as other:
            allowed = other.options("/v1/chat/completions", headers={**preflight, "Origin": "https://intranet.example"})
            assert allowed.status_code == 200
            assert allowed.headers["access-control-allow-origin"] == "https://intranet.example"
            assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
            refused = other.options("/v1/chat/completions", headers=preflight)
            assert "access-control-allow-origin" not in refused.headers


# -- rate limits ------------------------------------------------------------------------------------
@contextmanager
def server(tmp_path, **settings) -> Iterator[tuple[str, object]]:
    from month6_system.app import create_app
    from month6_system.serve import start_in_thread
    from month6_system.settings import Settings

    app = create_app(Settings(data_dir=tmp_path, **settings), ScriptedAssistant())
    background = start_in_thread(app)
    try:
        yield background.url, app
    finally:
        background.stop()


@pytest.mark.conformance("rate limit per key: 429 with Retry-After, honoured by the SDK's retries")
def test_a_key_over_its_rate_gets_429_with_retry_after_and_other_keys_do_not(tmp_path):
    with server(tmp_path, rate_limit_per_minute=60, rate_limit_burst=2) as (url, app):
        keys = {name: app.state.hybrid.keys.create(name) for name in ("team-a", "team-b")}
        strict = {name: openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0) for name, key in keys.items()}

        def ask(client):
            return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])

        ask(strict["team-a"]), ask(strict["team-a"])
        with pytest.raises(openai.RateLimitError) as err:
            ask(strict["team-a"])
        assert err.value.status_code == 429 and err.value.body["code"] == "rate_limit_exceeded"
        assert err.value.response.headers["retry-after"] == "1"  # one request a second
        assert ask(strict["team-b"]).choices[0].message.content == "You said: hi"  # a bucket per key
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.get("/healthz").status_code == 200  # probes are not limited

        patient = openai.OpenAI(base_url=url + "/v1", api_key=keys["team-a"], max_retries=3)
        start = time.perf_counter()
        assert ask(patient).choices[0].message.content == "You said: hi"
        assert time.perf_counter() - start >= 0.5  # it waited for the bucket


def test_the_token_bucket_allows_bursts_then_the_rate():
    now = [0.0]
    limiter = RateLimiter(per_minute=120, burst=3, clock=lambda: now[0])  # 2 a second
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0
    now[0] = 0.25
    assert limiter.take("a") == pytest.approx(0.25)  # half a token back: not yet
    now[0] = 0.5
    assert limiter.take("a") == 0.0 and limiter.take("a") == pytest.approx(0.5)
    now[0] = 100.0  # refills to the burst, not beyond
    assert [limiter.take("a") for _ in range(4)][-1] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        RateLimiter(per_minute=0, burst=1)


def test_a_generation_stops_at_its_deadline_and_closes_the_model_stream():
    now, closed = [0.0], []

    def model() -> Iterator[str]:
        try:
            for i in range(100):
                now[0] += 1.0  # each token takes a second
                yield f"t{i} "
        finally:
            closed.append(True)

    deadline = Deadline(3.5, clock=lambda: now[0])
    assert "".join(deadline.cut(model())) == "t0 t1 t2 t3 "
    assert deadline.expired and closed == [True]
    quick = Deadline(1000.0, clock=lambda: now[0])
    assert "".join(quick.cut(iter(["a", "b"]))) == "ab" and not quick.expired


def test_the_chat_page_is_served_with_a_strict_content_security_policy(http):
    page = http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"] and "unsafe" not in page.text
    assert page.headers["x-content-type-options"] == "nosniff"
    script = http.get("/web/app.js")
    assert script.status_code == 200 and "textContent" in script.text and "innerHTML" not in script.text
    assert http.get("/web/../app.py").status_code == 404
