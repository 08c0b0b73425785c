"""One request's trace: what the agent decided and how long each stage took, as plain JSON-able data.

    trace = Trace(key="team-a")
    with trace.stage("route"):
        trace.data["expert"] = {"name": "math", "probability": 0.98}
    trace.add_tool_step("calculator", {"expression": "2+2"}, "4", 0.0002, ok=True)
    store.put_trace(trace.id, trace.key, trace.as_dict())     # retrievable by id (storage.py)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Trace:
    def __init__(self, key: str = "default", trace_id: str | None = None) -> None:
        self.id = trace_id or f"trace-{uuid.uuid4().hex}"
        self.key = key
        self.stages: dict[str, float] = {}  # stage -> seconds (summed when a stage runs several times)
        self.tool_steps: list[dict[str, Any]] = []
        self.data: dict[str, Any] = {}  # expert, retrieved chunks, memory path, notes

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - start

    def add_tool_step(self, name: str, arguments: dict[str, Any], result: Any, seconds: float, ok: bool,
                      side: str = "server") -> dict[str, Any]:
        step = {"tool": name, "arguments": arguments, "result": result, "latency_s": round(seconds, 6), "ok": ok,
                "side": side}
        self.tool_steps.append(step)
        return step

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, **self.data, "tool_steps": self.tool_steps,
                "stages_s": {k: round(v, 6) for k, v in self.stages.items()}}
