"""Month 6 graded exercises: your implementation.

Fill in every `raise NotImplementedError(...)`, then grade your work:

    python -m shared.exercises start month6
    pytest month6_system --impl my_work/month6_system.py            # all tasks
    pytest month6_system --impl my_work/month6_system.py -m m6_t1   # one task

The tests compare your calculator with Python's own arithmetic on generated expressions and feed it
attacks; drive your tool loop with scripted policies and the real tool registry; read your SSE stream
back with the SSE rules; and send your validator the requests OpenAI refuses. The errors and types you
raise or take are the reference ones, imported below, so the server's tests can use your code too.
"""

from __future__ import annotations

import ast  # noqa: F401  (you will want it)
import json  # noqa: F401  (you will want it)
import math  # noqa: F401  (you will want it)
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from month6_system.calculator import CalculatorError  # noqa: F401  (raise it for anything not allowed)
from month6_system.loop import LoopResult, Policy  # noqa: F401  (LoopResult is what run_tool_loop returns)
from month6_system.protocol import APIError, ChatCompletionRequest  # noqa: F401
from month6_system.tools import Registry, ToolRun

MONTH = "month6_system"


# Task 6.1 (15 points) -----------------------------------------------------------------------
def calculate(expression: str) -> int | float:
    """The value of an arithmetic expression, computed without eval: "240 * 15 / 100" -> 36.0.

    Allowed: int and float literals (not bool), + - * / // % and ** (with ^ meaning **), unary + and -,
    parentheses, the names pi and e, and the functions sqrt abs round floor ceil log log10 exp sin cos tan min max
    called with positional arguments.
    Everything else raises CalculatorError with a message saying why: names ("unknown name"), attributes,
    calls of other functions ("functions"), strings ("only numbers"), an empty or over-500-character text,
    division by zero ("division by zero"), exponents or results too large ("exponent", "larger than the limit").
    Ints stay ints where Python's arithmetic keeps them ints (7 // 2 == 3, 2 ** 10 == 1024).
    """
    raise NotImplementedError("Task 6.1: calculate")


# Task 6.2 (10 points) -----------------------------------------------------------------------
def run_tool_loop(request: str, policy: Policy, registry: Registry, max_steps: int = 4,
                  on_run: Callable[[ToolRun], None] | None = None) -> LoopResult:
    """Ask `policy(request, runs_so_far)` for a call ({"name", "arguments"}) or None, until it answers.

    Stop with LoopResult.stopped = "answer" (None), "invalid_call" (registry.validate(call) has problems:
    set problems and refused_call), "repeated_call" (the same name and arguments again: refused_call),
    "client_tool" (registry.tools[name].client_side: set client_call, do not run it) or "max_steps"
    (max_steps server tools have run). Run a server tool with registry.execute(name, arguments), append
    the ToolRun to result.runs, and pass it to on_run. max_steps < 1 is a ValueError.
    """
    raise NotImplementedError("Task 6.2: run_tool_loop")


# Task 6.3 (5 points) ------------------------------------------------------------------------
def sse_event(payload: dict[str, Any]) -> str:
    """One server-sent event: "data: " + the payload as compact JSON on one line, then a blank line."""
    raise NotImplementedError("Task 6.3: sse_event")


def sse_stream(events: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Every payload as an event, then "data: [DONE]" and a blank line (also when there are none)."""
    raise NotImplementedError("Task 6.3: sse_stream")


# Task 6.4 (10 points) -----------------------------------------------------------------------
def check_chat_request(request: ChatCompletionRequest) -> None:
    """The cross-field checks OpenAI makes on a parsed chat request; raise APIError(400, message, param=...).

    - tools: function names unique (param "tools");
    - tool_choice: a named function must be one of the tools; "required" needs at least one tool
      (param "tool_choice");
    - stream_options only with stream true (param "stream_options");
    - messages: an assistant message with tool_calls must be followed by tool messages answering each of its
      ids before any other message, and a tool message must answer such an id (param "messages[i]", i the
      index of the offending message, or len(messages) when the last ids are never answered).
    """
    raise NotImplementedError("Task 6.4: check_chat_request")
