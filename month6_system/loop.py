"""The agent's tool loop: ask the policy for a call, run it, repeat; bounded, with loop detection.

    result = run_tool_loop("What is 15 percent of 240?", policy, registry, max_steps=4)
    result.stopped          # "answer" | "client_tool" | "invalid_call" | "repeated_call" | "max_steps"
    result.runs             # the server tools' ToolRuns, in order (arguments, result, latency)
    result.client_call      # a call to a client-defined tool: returned to the client, not run here

The policy sees the request and the runs so far and returns a call `{"name", "arguments"}` or None
(answer now). Month 2's tool-call model is a one-step policy (it was trained on single requests), so the
assistant's policy answers after the first run; a scripted policy in the tests drives longer loops.
A tool's result never becomes the policy's instructions: the policy is given the request, and the runs
as data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from month6_system.tools import Registry, ToolRun

Call = dict[str, Any]
Policy = Callable[[str, list[ToolRun]], Call | None]
Stop = Literal["answer", "client_tool", "invalid_call", "repeated_call", "max_steps"]
DEFAULT_MAX_STEPS = 4


@dataclass
class LoopResult:
    runs: list[ToolRun] = field(default_factory=list)
    stopped: Stop = "answer"
    client_call: Call | None = None
    problems: list[str] = field(default_factory=list)  # why the last call was refused (invalid_call)
    refused_call: Call | None = None  # the call that was not run (invalid or repeated)


def _key(call: Call) -> str:
    return json.dumps([call.get("name"), call.get("arguments")], sort_keys=True, default=str)


def run_tool_loop(request: str, policy: Policy, registry: Registry, max_steps: int = DEFAULT_MAX_STEPS,
                  on_run: Callable[[ToolRun], None] | None = None) -> LoopResult:
    """Run the policy's calls until it answers, calls a client tool, repeats a call, makes a call the
    registry refuses, or `max_steps` server tools have run. `on_run` sees each run as it finishes."""
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    result, seen = LoopResult(), set()
    while len(result.runs) < max_steps:
        call = policy(request, list(result.runs))
        if call is None:
            result.stopped = "answer"
            return result
        problems = registry.validate(call)
        if problems:
            result.stopped, result.problems, result.refused_call = "invalid_call", problems, call
            return result
        if _key(call) in seen:  # the same call again would give the same result: a loop
            result.stopped, result.refused_call = "repeated_call", call
            return result
        seen.add(_key(call))
        if registry.tools[call["name"]].client_side:
            result.stopped, result.client_call = "client_tool", call
            return result
        run = registry.execute(call["name"], call["arguments"])
        result.runs.append(run)
        if on_run is not None:
            on_run(run)
    result.stopped = "max_steps"
    return result
