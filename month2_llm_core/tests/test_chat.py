"""The chatbot: history trimming, the command loop without a TTY, the OpenAI-compatible client
against a small local fake server, and the transformers backend on the real SmolLM2."""

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from month2_llm_core.chat import (
    ChatSession,
    LlamaCppBackend,
    OpenAIBackend,
    Sampling,
    TransformersBackend,
    run_chat,
    trim_history,
)


def words(messages):
    """A token counter for tests: one token per word plus one per message."""
    return sum(len(m["content"].split()) + 1 for m in messages)


class EchoBackend:
    """Answers 'echo: <last user message>' in one-word pieces; records what it was sent."""

    name = "echo"

    def __init__(self):
        self.seen = []

    def count_tokens(self, messages):
        return words(messages)

    def stream(self, messages, sampling):
        self.seen.append([dict(m) for m in messages])
        for i, word in enumerate(["echo:", *messages[-1]["content"].split()]):
            yield (" " if i else "") + word


def chat(session, text):
    out = io.StringIO()
    run_chat(session, io.StringIO(text), out)
    return out.getvalue()


# -- trimming --------------------------------------------------------------------------------------
def turns(n):
    msgs = [{"role": "system", "content": "be brief"}]
    for i in range(n):
        msgs += [{"role": "user", "content": f"question {i} a b"}, {"role": "assistant", "content": f"answer {i} c"}]
    return msgs + [{"role": "user", "content": "last question here"}]


def test_trim_keeps_everything_that_fits():
    msgs = turns(2)
    kept, dropped = trim_history(msgs, words, budget=words(msgs))
    assert kept == msgs and dropped == 0


def test_trim_drops_whole_old_turns_first_and_keeps_system_and_last():
    msgs = turns(3)  # system 3 tokens, each turn 5 + 4 = 9, last 4: 34 in all
    kept, dropped = trim_history(msgs, words, budget=20)
    assert kept[0] == msgs[0] and kept[-1] == msgs[-1]
    assert dropped == 4 and kept[1:] == msgs[5:]  # turns 0 and 1 gone, turn 2 kept
    assert words(kept) <= 20 and kept[1]["role"] == "user"


def test_trim_raises_when_the_last_message_alone_is_too_long():
    with pytest.raises(ValueError, match="context window"):
        trim_history(turns(1), words, budget=5)


# -- the loop --------------------------------------------------------------------------------------
def test_loop_streams_answers_and_keeps_history():
    backend = EchoBackend()
    session = ChatSession(backend, system="be brief", context_window=1000, sampling=Sampling(max_new_tokens=10))
    out = chat(session, "hello there\nsecond one\n")
    assert "bot> echo: hello there\n" in out and "bot> echo: second one\n" in out
    assert [m["role"] for m in session.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert backend.seen[1][2] == {"role": "assistant", "content": "echo: hello there"}


def test_commands_help_reset_save_quit(tmp_path):
    session = ChatSession(EchoBackend(), system="sys", context_window=1000, sampling=Sampling(max_new_tokens=10))
    target = tmp_path / "conv" / "chat.json"
    out = chat(session, f"/help\nhi\n/save {target}\n/reset\n/nope\n/save\n/quit\nnever read\n")
    assert "/reset" in out and "/save PATH" in out  # the help text
    saved = json.loads(target.read_text())
    assert saved["backend"] == "echo" and [m["content"] for m in saved["messages"]] == ["sys", "hi", "echo: hi"]
    assert "[conversation reset]" in out and session.messages == [{"role": "system", "content": "sys"}]
    assert "unknown command /nope" in out and "usage: /save PATH" in out
    assert "never read" not in out


def test_loop_trims_history_to_the_context_window_and_says_so():
    backend = EchoBackend()
    session = ChatSession(backend, system="s", context_window=30, sampling=Sampling(max_new_tokens=10))
    out = chat(session, "one two three four\nfive six seven eight\nnine ten eleven twelve\n")
    assert "[history trimmed: 2 old messages dropped" in out
    assert words(backend.seen[-1]) <= 20 and backend.seen[-1][0]["content"] == "s"
    too_long = chat(session, " ".join(["w"] * 50) + "\n")
    assert "[error]" in too_long and "context window" in too_long


# -- OpenAI-compatible client against a fake server -------------------------------------------------
class FakeOpenAI(BaseHTTPRequestHandler):
    requests: list = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        if self.path != "/v1/models":
            return self.send_error(404)
        body = json.dumps({"object": "list", "data": [{"id": "fake-smol", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **request})
        if request["model"] != "fake-smol":
            return self.send_error(404, "model not found")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        reply = f"You sent {len(request['messages'])} messages."
        for piece in [reply[:8], reply[8:19], reply[19:]]:
            chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": piece}}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b": keep-alive comment\n\n")
        done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
        self.close_connection = True


@pytest.fixture
def fake_server():
    FakeOpenAI.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_openai_backend_streams_from_a_compatible_server(fake_server):
    backend = OpenAIBackend(fake_server, api_key="secret")
    assert backend.model == "fake-smol" and backend.models() == ["fake-smol"]  # discovered from /v1/models
    session = ChatSession(backend, system="You are terse.", context_window=512, sampling=Sampling(max_new_tokens=32))
    pieces = list(session.reply("hello"))
    assert pieces == ["You sent", " 2 messages", "."]
    out = chat(session, "again\n")
    assert "bot> You sent 4 messages.\n" in out
    sent = FakeOpenAI.requests[-1]
    assert sent["path"] == "/v1/chat/completions" and sent["stream"] is True and sent["max_tokens"] == 32
    assert sent["auth"] == "Bearer secret" and sent["messages"][0] == {"role": "system", "content": "You are terse."}


def test_openai_backend_asks_the_server_for_schema_constrained_json(fake_server):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    backend = OpenAIBackend(fake_server)
    assert "".join(backend.stream([{"role": "user", "content": "a city"}], Sampling(json_schema=schema)))
    assert FakeOpenAI.requests[-1]["response_format"] == {"type": "json_schema",
                                                          "json_schema": {"name": "answer", "schema": schema}}
    list(backend.stream([{"role": "user", "content": "a city"}], Sampling()))
    assert "response_format" not in FakeOpenAI.requests[-1]


def test_openai_backend_reports_server_errors(fake_server):
    backend = OpenAIBackend(fake_server, model="no-such-model")
    session = ChatSession(backend, system="", context_window=512, sampling=Sampling(max_new_tokens=8))
    assert "[error] server answered 404" in chat(session, "hi\n")


def test_cli_chat_against_the_fake_server(fake_server):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "month2_llm_core", "chat", "--backend", "openai", "--base-url",
                           fake_server], input="hi\n/quit\n", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "[openai:fake-smol@" in proc.stdout and "bot> You sent 2 messages." in proc.stdout


def test_llamacpp_backend_explains_how_to_install_it_or_answers():
    """Without the optional extra: a clear error. With it: SmolLM2's own GGUF answers (batch 1: a native
    build crashes in ggml's AMX kernels on the project's CPUs; README)."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="llama-cpp-python"):
            LlamaCppBackend()
        return
    session = ChatSession(LlamaCppBackend(batch=1), context_window=256, sampling=Sampling(max_new_tokens=16))
    assert "Paris" in chat(session, "What is the capital of France?\n")


# -- the real model ----------------------------------------------------------------------------------
@pytest.mark.model
def test_transformers_backend_answers_on_the_fast_path(smollm2):
    model, tokenizer = smollm2
    backend = TransformersBackend(model, tokenizer, "smollm2", fast=True, decode_path="speculative")
    assert backend.decoder is not None and backend.name == "transformers:smollm2, speculative fp16 + int4 draft"
    session = ChatSession(backend, context_window=256, sampling=Sampling(max_new_tokens=16))
    out = chat(session, "What is the capital of France?\n")
    assert "Paris" in out
    assert backend.count_tokens(session.messages) < 256
    # A window too small for the first exchange, large enough for the system prompt and the question.
    question = {"role": "user", "content": "And the capital of Italy?"}
    full = backend.count_tokens([*session.messages, question])
    minimal = backend.count_tokens([session.messages[0], question])
    session.context_window = 16 + (full + minimal) // 2
    out = chat(session, question["content"] + "\n")
    assert "[history trimmed" in out and "Rome" in out


def test_the_backend_name_says_which_decode_path_runs():
    """No "(fast path)" label when the fast path is not what runs: the name says what does."""
    from types import SimpleNamespace

    from transformers import GPT2Config, GPT2LMHeadModel

    from month2_llm_core.tests.test_lean_llama import tiny_model

    tokenizer = SimpleNamespace(eos_token_id=None)
    llama = tiny_model()

    def name(model, **kwargs):
        return TransformersBackend(model, tokenizer, "tiny", **kwargs).name

    assert name(llama, fast=True, decode_path="fp16") == "transformers:tiny, fp16 decoder"
    assert name(llama, fast=True, decode_path="speculative", temperature=0.7) == "transformers:tiny, fp16 decoder"
    assert name(llama, fast=False) == "transformers:tiny, transformers forward"
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50)).eval()
    with pytest.warns(UserWarning, match="fast path off"):
        assert name(gpt2, fast=True) == "transformers:tiny, transformers forward"
