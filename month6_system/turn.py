"""One request to the assistant and its result: the seam between the HTTP server and the agent.

The server (`app.py`) turns an OpenAI chat-completions request into a `Turn`, and a `TurnResult`
(or a stream of text deltas ending in one) back into an OpenAI response. The agent (`agent.py`)
implements `Assistant`. Plain data both ways, so traces can be logged and tests can script one side.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

FinishReason = Literal["stop", "length", "tool_calls"]
DEFAULT_KEY = "default"  # the scope of every request until API keys exist (#13)


@dataclass
class ToolCall:
    id: str  # "call_..." as OpenAI clients expect
    name: str
    arguments: str  # a JSON object, as text (OpenAI semantics)


@dataclass
class Turn:
    messages: list[dict[str, Any]]  # OpenAI messages: role system/user/assistant(tool_calls)/tool
    tools: list[dict[str, Any]] = field(default_factory=list)  # the client's OpenAI "tools" (type function)
    # "auto" | "none" | "required" | {"type": "function", "function": {"name": ...}}
    tool_choice: str | dict[str, Any] = "auto"
    parallel_tool_calls: bool = True
    # {"type": "json_object"} | {"type": "json_schema", "json_schema": {...}}
    response_format: dict[str, Any] | None = None
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    key: str = DEFAULT_KEY  # whose conversations, memory and documents these are (API-key scope)
    conversation: str = ""  # a conversation id, when the client sends one


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class TurnResult:
    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)  # client-defined tools to run by the client
    finish_reason: FinishReason = "stop"
    usage: Usage = field(default_factory=Usage)
    # the expert, tool steps, retrieved chunks, memory path, time per stage
    trace: dict[str, Any] = field(default_factory=dict)
    trace_id: str = ""


class BadTurn(ValueError):
    """A request the assistant cannot serve as asked: the server answers 400 with this message."""


class Assistant(Protocol):
    def check(self, turn: Turn) -> None:
        """Raise `BadTurn` for a request this assistant cannot serve (before a stream's first byte)."""
        ...

    def run(self, turn: Turn) -> TurnResult: ...

    def stream(self, turn: Turn) -> Iterator[str | TurnResult]:
        """Text deltas as they are generated, then exactly one `TurnResult` (its `content` is the whole text)."""
        ...

    def count_tokens(self, messages: list[dict[str, Any]]) -> int: ...
