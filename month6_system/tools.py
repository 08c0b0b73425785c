"""The agent's tools: the server's own (calculator, document search, memory recall, current time) and the
client's (from a request's OpenAI `tools` JSON), all as month 2's `ToolSpec`s in one registry.

Server tools run here, each with a time limit, and every run is recorded (arguments, result, latency).
Client tools have no implementation here: the agent returns calls to them to the client (OpenAI semantics).
A tool's result is data: it goes back to the model as a `tool` message, never into the instructions.
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema

from month2_llm_core.toolcalls import TOOLS_BY_NAME, ToolSpec
from month6_system.calculator import CalculatorError, calculate, format_result
from month6_system.settings import MEMORY_CONFIDENCE

DEFAULT_TIMEOUT_S = 10.0


class ToolError(Exception):
    """A tool refused its arguments or failed; the message goes back to the model as the result."""


@dataclass
class Tool:
    spec: ToolSpec
    run: Callable[..., dict[str, Any]] | None = None  # None: a client-defined tool (the client runs it)
    # False: runs in the caller's thread, no time limit (a search cut off by the limit would keep month 5's
    # SQLite connection busy behind the next request); its latency is still recorded
    in_thread: bool = True

    @property
    def client_side(self) -> bool:
        return self.run is None


@dataclass
class ToolRun:
    name: str
    arguments: dict[str, Any]
    ok: bool
    result: dict[str, Any]  # {"error": ...} when not ok
    seconds: float

    def as_message_content(self) -> str:
        return json.dumps(self.result, ensure_ascii=False, default=str)


# ---------------------------------------------------------------- the server's tools


def calculator_tool(expression: str) -> dict[str, Any]:
    try:
        return {"expression": expression, "result": format_result(calculate(expression))}
    except CalculatorError as err:
        raise ToolError(str(err)) from None


def current_time_tool(timezone: str = "UTC") -> dict[str, Any]:
    try:
        now = datetime.now(ZoneInfo(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(f"unknown IANA timezone {timezone!r}") from None
    return {"timezone": timezone, "time": now.isoformat(timespec="seconds")}


def search_documents_tool(rag, collection: str, lock: threading.Lock | None = None) -> Callable[..., dict[str, Any]]:
    """Month 5's grounded answer: the evidence sentences with their `[file p.N]` citations, and the hits' scores.
    `lock`: the one month 5's store is used under (searches and uploads of concurrent requests take turns)."""
    lock = lock or threading.Lock()

    def run(query: str, top_k: int = 5) -> dict[str, Any]:
        with lock:
            return search(query, top_k)

    def search(query: str, top_k: int) -> dict[str, Any]:
        from month5_rag.rag import AnswerConfig

        if collection not in rag.collections():
            return {"found": False, "text": "No documents have been ingested.", "citations": [], "evidence": [],
                    "hits": []}
        answer = rag.answer(query, collection, AnswerConfig(k=max(1, min(int(top_k), 20)), generate=False))
        return {"found": answer.found, "text": answer.text, "citations": answer.citations,
                "evidence": [{"sentence": e.sentence, "locator": e.locator, "score": round(e.score, 4)}
                             for e in answer.evidence],
                "hits": [{"locator": h.locator, "score": round(h.score, 4), "similarity": h.similarity}
                         for h in answer.hits]}
    return run


def recall_memory_tool(memory, storage, key: str, threshold: float = MEMORY_CONFIDENCE) -> Callable[..., dict]:
    """Month 3's long memory first: its answer is taken at `threshold` confidence or more when a message of the key
    states it (the value with the question's words: `Storage.stated`, a lookup by value), since a reader can answer,
    sure of itself, for a key it was never told (with the value of a key like it). Otherwise (the reader unsure,
    unconfirmed, or saying it was never told) a search of the stored transcript. The result says which path answered."""
    def run(query: str) -> dict[str, Any]:
        recalled = memory.recall(query) if memory is not None else None
        sure = recalled is not None and recalled.known and recalled.confidence >= threshold
        source = storage.stated(key, recalled.answer, query) if sure else None
        if source is not None:
            return {"path": "memory", "answer": recalled.answer, "confidence": round(recalled.confidence, 4),
                    "stated_in": source.id}
        found = storage.search_messages(key, query, limit=3)
        result = {"path": "transcript", "answer": [m.content for m in found],
                  "memory_confidence": round(recalled.confidence, 4) if recalled is not None else None}
        if sure:
            result["memory_unconfirmed"] = recalled.answer  # sure, but no message states it for this question
        if recalled is not None and not recalled.known:
            result["memory_not_told"] = True  # the reader says it was never told this
        return result
    return run


# ---------------------------------------------------------------- the client's tools


def client_tools(openai_tools: list[dict[str, Any]]) -> list[Tool]:
    """A request's OpenAI `tools` (type "function") as client-side `Tool`s."""
    tools = []
    for item in openai_tools:
        if item.get("type", "function") != "function" or "function" not in item:
            raise ValueError(f"only function tools are supported, got {item.get('type')!r}")
        fn = item["function"]
        parameters = fn.get("parameters") or {"type": "object", "properties": {}}
        tools.append(Tool(ToolSpec(fn["name"], fn.get("description", ""), parameters)))
    return tools


# ---------------------------------------------------------------- the registry


@dataclass
class Registry:
    tools: dict[str, Tool] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S

    def add(self, tool: Tool) -> None:
        # a client tool with a server tool's name would let a request redirect a server call: refuse it
        if tool.spec.name in self.tools:
            raise ValueError(f"tool {tool.spec.name!r} is defined twice")
        self.tools[tool.spec.name] = tool

    @property
    def specs(self) -> tuple[ToolSpec, ...]:
        return tuple(t.spec for t in self.tools.values())

    def validate(self, call: dict[str, Any]) -> list[str]:
        """Problems with a parsed call against this registry's specs ([] when it can run)."""
        tool = self.tools.get(call.get("name"))
        if tool is None:
            return [f"unknown tool {call.get('name')!r}"]
        args = call.get("arguments")
        if not isinstance(args, dict):
            return ["arguments must be a JSON object"]
        try:
            jsonschema.validate(args, tool.spec.parameters)
        except jsonschema.ValidationError as err:
            return [err.message]
        return []

    def execute(self, name: str, arguments: dict[str, Any]) -> ToolRun:
        """Run a server tool with the time limit; failures are results (`ok` False), never exceptions."""
        tool = self.tools[name]
        if tool.client_side:
            raise ValueError(f"{name!r} is a client tool: the client runs it")
        start = time.perf_counter()
        problems = self.validate({"name": name, "arguments": arguments})
        if problems:
            return ToolRun(name, arguments, False, {"error": "; ".join(problems)}, time.perf_counter() - start)
        if not tool.in_thread:
            try:
                result, ok = tool.run(**arguments), True
            except ToolError as err:
                result, ok = {"error": str(err)}, False
            return ToolRun(name, arguments, ok, result, time.perf_counter() - start)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        future = pool.submit(tool.run, **arguments)
        try:
            result, ok = future.result(timeout=self.timeout_s), True
        except concurrent.futures.TimeoutError:
            result, ok = {"error": f"timed out after {self.timeout_s} s"}, False
        except ToolError as err:
            result, ok = {"error": str(err)}, False
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return ToolRun(name, arguments, ok, result, time.perf_counter() - start)


def server_registry(rag=None, collection: str = "default", memory=None, storage=None, key: str = "default",
                    timeout_s: float = DEFAULT_TIMEOUT_S, rag_lock: threading.Lock | None = None,
                    memory_confidence: float = MEMORY_CONFIDENCE) -> Registry:
    """The server's tools with month 2's specs (the names and schemas its tool-call model was trained on).
    Document search and memory recall are present only when their month's object is given."""
    registry = Registry(timeout_s=timeout_s)
    registry.add(Tool(TOOLS_BY_NAME["calculator"], calculator_tool))
    registry.add(Tool(TOOLS_BY_NAME["get_current_time"], current_time_tool))
    if rag is not None:
        registry.add(Tool(TOOLS_BY_NAME["search_documents"], search_documents_tool(rag, collection, rag_lock),
                          in_thread=False))
    if storage is not None:
        registry.add(Tool(TOOLS_BY_NAME["recall_memory"], recall_memory_tool(memory, storage, key,
                                                                                         memory_confidence)))
    return registry
