"""Server-sent events as OpenAI streams them: `data: {json}\\n\\n` per event, then `data: [DONE]\\n\\n`.

Each event is one line of compact JSON (json.dumps escapes newlines inside strings, so an event can
never be split by its own text). `parse_sse` reads such a stream back per the SSE rules (several
`data:` lines join with a newline, `:` comments and other fields are skipped, CRLF and LF both end
lines); the tests use it to read the server's raw bytes without trusting a client library.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

DONE = "[DONE]"


def sse_event(payload: dict[str, Any]) -> str:
    """One event: the payload as compact JSON on a single `data:` line, ended by a blank line."""
    return f"data: {json.dumps(payload, separators=(',', ':'), ensure_ascii=False)}\n\n"


def sse_stream(events: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Every payload as an event, then the `[DONE]` sentinel (also after an empty stream)."""
    for payload in events:
        yield sse_event(payload)
    yield f"data: {DONE}\n\n"


def parse_sse(text: str) -> list[dict[str, Any]]:
    """The JSON payloads of a stream, in order, up to `[DONE]`; raises ValueError if `[DONE]` never comes."""
    payloads: list[dict[str, Any]] = []
    data: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line == "":  # a blank line dispatches the event
            if data:
                body = "\n".join(data)
                if body == DONE:
                    return payloads
                payloads.append(json.loads(body))
                data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    raise ValueError("the stream ended without data: [DONE]")
