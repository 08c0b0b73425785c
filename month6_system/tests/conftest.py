"""Month 6 test support: a deterministic scripted `Assistant` (unit tests only, never the product), a live
uvicorn server on loopback (a free port, in a thread, once per module), and the conformance table:
every test marked `conformance("feature")` adds a pass/fail row to runs/month6/conformance.md."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from month6_system.turn import ToolCall, Turn, TurnResult, Usage

ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE = ROOT / "runs" / "month6" / "conformance.md"
WORD = re.compile(r"[A-Za-z0-9_]+")


# -- the scripted assistant --------------------------------------------------------------------------
class ScriptedAssistant:
    """Answers by rule, so each server behaviour can be asserted exactly:
    - after a `tool` message: "The tool said: <its content>";
    - tools it may call (tool_choice auto) when a word of a tool's name is in the last user message
      ("weather" calls get_weather); required / a named function: always; none: never. String
      arguments are the last word of the user message, numbers 1, booleans true;
    - response_format json_object / json_schema: a JSON value from the schema and the last word (the words
      "BREAK JSON" in the message make it emit broken JSON, "WRONG SCHEMA" valid JSON of the wrong shape);
    - otherwise "You said: <the last user message>", cut to max_tokens words (finish_reason "length").
    Tokens are words (count_tokens), so context-window checks are exact in the tests."""

    def __init__(self) -> None:
        self.turns: list[Turn] = []

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        text = " ".join(str(m.get("content") or "") + (" " + json.dumps(m["tool_calls"]) if m.get("tool_calls") else "")
                       for m in messages)
        return len(text.split())

    def check(self, turn: Turn) -> None:
        pass  # serves every request the protocol accepts

    def run(self, turn: Turn) -> TurnResult:
        self.turns.append(turn)
        last_user = next((m["content"] or "" for m in reversed(turn.messages) if m["role"] == "user"), "")
        usage = Usage(prompt_tokens=self.count_tokens(turn.messages))
        trace = {"assistant": "scripted", "expert": "chat", "probability": 1.0, "messages": len(turn.messages),
                 "response_format": turn.response_format,  # what reached the assistant, seen from any process
                 "pid": os.getpid()}  # which process served it: replicas are told apart by it
        tid = f"trace-scripted-{len(self.turns)}"
        calls = self._tool_calls(turn, last_user)
        if calls:
            usage.completion_tokens = sum(len(c.arguments.split()) for c in calls)
            return TurnResult(None, calls, "tool_calls", usage, trace, tid)
        content = self._content(turn, last_user)
        words = content.split(" ")
        finish = "stop"
        if turn.response_format is None and len(words) > turn.max_tokens:
            words, finish = words[:turn.max_tokens], "length"
        usage.completion_tokens = len(words)
        return TurnResult(" ".join(words), [], finish, usage, trace, tid)

    def stream(self, turn: Turn) -> Iterator[str | TurnResult]:
        result = self.run(turn)
        if result.content:
            pieces = result.content.split(" ")
            for i, piece in enumerate(pieces):
                yield piece + (" " if i < len(pieces) - 1 else "")
        yield result

    def _tool_calls(self, turn: Turn, last_user: str) -> list[ToolCall]:
        if not turn.tools or turn.tool_choice == "none" or turn.messages[-1]["role"] == "tool":
            return []
        functions = [t["function"] for t in turn.tools]
        if isinstance(turn.tool_choice, dict):
            chosen = [f for f in functions if f["name"] == turn.tool_choice["function"]["name"]]
        else:
            words = {w.lower() for w in WORD.findall(last_user)}
            chosen = [f for f in functions if (set(f["name"].lower().split("_")) - {"get", "set"}) & words]
            if turn.tool_choice == "required" and not chosen:
                chosen = functions[:1]
        if not turn.parallel_tool_calls:
            chosen = chosen[:1]
        last_word = (WORD.findall(last_user) or ["x"])[-1]
        return [ToolCall(f"call_{len(self.turns)}_{i}", f["name"], json.dumps(_instance(f.get("parameters")
                                                                                         or {}, last_word)))
                for i, f in enumerate(chosen)]

    def _content(self, turn: Turn, last_user: str) -> str:
        if turn.messages[-1]["role"] == "tool":
            return f"The tool said: {turn.messages[-1]['content']}"
        fmt = turn.response_format
        if fmt is None or fmt["type"] == "text":
            return f"You said: {last_user}"
        if "BREAK JSON" in last_user:
            return '{"answer": '
        if "WRONG SCHEMA" in last_user:
            return json.dumps({"unexpected": [1, 2, 3]})
        schema = fmt.get("json_schema", {}).get("schema") if fmt["type"] == "json_schema" else None
        last_word = (WORD.findall(last_user) or ["x"])[-1]
        return json.dumps(_instance(schema or {"type": "object", "properties": {"answer": {"type": "string"}}},
                                    last_word))


class ScriptedWithRecords(ScriptedAssistant):
    """The scripted assistant with real records under `data_dir`: a transcript (or the PostgreSQL database
    `database_url`), month 5's store (hashing embedder), for the routes /v1/documents and /v1/memory; its
    traces are kept in the transcript's database like the real assistant's."""

    def __init__(self, data_dir: Path, database_url: str = "") -> None:
        from month5_rag.rag import Rag, RagConfig
        from month6_system.records import Records
        from month6_system.storage import SqlStorage

        super().__init__()
        self.storage = SqlStorage(database_url or data_dir / "assistant.sqlite")
        self.records = Records(Rag(RagConfig(store="chroma", store_dir=str(data_dir / "store"),
                                             embedding_model="hashing", progress=False)), self.storage)

    def run(self, turn: Turn) -> TurnResult:
        result = super().run(turn)
        result.trace_id = f"trace-{uuid.uuid4().hex}"
        self.storage.put_trace(result.trace_id, turn.key, result.trace)
        return result


def _instance(schema: dict[str, Any], text: str) -> Any:
    """A value valid under a simple schema (objects, arrays, enums, scalars), built from `text`."""
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type", "object")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        return {name: _instance(sub, text) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [_instance(schema.get("items") or {"type": "string"}, text)] * max(1, schema.get("minItems", 1))
    return {"string": text, "integer": 1, "number": 1.5, "boolean": True, "null": None}.get(kind, text)


# -- a live server ----------------------------------------------------------------------------------
@dataclass
class LiveServer:
    url: str  # http://127.0.0.1:PORT
    app: Any
    assistant: Any

    @property
    def base_url(self) -> str:
        return self.url + "/v1"


@pytest.fixture(scope="module")
def live_server(request, tmp_path_factory) -> Iterator[LiveServer]:
    """The app with a scripted assistant (or `server_assistant`, `server_settings` of the module) on loopback,
    its data (API keys, uploads) in a fresh folder unless the module's settings name one."""
    from month6_system.app import create_app
    from month6_system.serve import start_in_thread
    from month6_system.settings import Settings

    assistant = getattr(request.module, "server_assistant", ScriptedAssistant)()
    settings = Settings(**{"data_dir": tmp_path_factory.mktemp("month6-data"),
                           **getattr(request.module, "server_settings", {})})
    app = create_app(settings, assistant)
    background = start_in_thread(app)
    yield LiveServer(background.url, app, assistant)
    background.stop()


# -- the conformance table --------------------------------------------------------------------------
_results: dict[tuple[str, str], str] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance(feature, assistant='scripted'): a row of the conformance table")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    mark = item.get_closest_marker("conformance")
    if mark is None or (report.when != "call" and not report.failed and not report.skipped):
        return
    # A module that reruns another's tests against another deployment names its own column.
    key = (mark.args[0], getattr(item.module, "CONFORMANCE_COLUMN", mark.kwargs.get("assistant", "scripted")))
    if report.skipped and key not in _results:
        _results[key] = "skipped"
    elif report.failed:
        _results[key] = "fail"
    elif report.when == "call" and _results.get(key) != "fail":
        _results[key] = "pass"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _results:
        return
    assistants = sorted({a for _, a in _results}, key=lambda a: a != "scripted")
    features = list(dict.fromkeys(f for f, _ in _results))
    lines = ["# Conformance: the official openai SDK against the live server", "",
             f"Written by `pytest month6_system -k sdk` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC "
             "(openai " + _openai_version() + "). `scripted`: a deterministic scripted assistant (protocol only); "
             "`real`: the month-6 agent on the offline models (`-m model`); `ray x2`: the scripted assistant in 2 Ray "
             "Serve replicas sharing PostgreSQL (test_ray.py).", "",
             "| feature | " + " | ".join(assistants) + " |", "|---|" + "---|" * len(assistants)]
    for feature in features:
        lines.append(f"| {feature} | " + " | ".join(_results.get((feature, a), "not run") for a in assistants) + " |")
    CONFORMANCE.parent.mkdir(parents=True, exist_ok=True)
    CONFORMANCE.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _openai_version() -> str:
    try:
        import openai

        return openai.__version__
    except ImportError:
        return "not installed"
