"""The durable record: conversation transcripts and request traces, behind a small `Storage` interface.

    store = SqliteStorage("runs/month6/data/assistant.sqlite")
    store.append_message("team-a", "conv-1", "user", "my badge id is K7Q2X")
    store.messages("team-a", "conv-1")             # [StoredMessage(...)]
    store.search_messages("team-a", "badge id")    # transcript search: memory's fallback
    store.put_trace("trace-1", "team-a", {...}); store.get_trace("trace-1")

Everything is scoped by a key (`Turn.key`, the API key's scope): one key never sees another's rows.
SQLite is the embedded default; the interface is what a PostgreSQL implementation has to provide.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from shared.migrations import migrate

MIGRATIONS = Path(__file__).parent / "migrations" / "assistant"  # versioned SQL, applied in order (shared.migrations)
_WORD = re.compile(r"\w+")


@dataclass
class StoredMessage:
    id: int
    key: str
    conversation: str
    role: str
    content: str
    created: float
    trace_id: str | None = None  # an answer's trace


class Storage(Protocol):
    def append_message(self, key: str, conversation: str, role: str, content: str,
                       trace_id: str | None = None) -> int: ...

    def messages(self, key: str, conversation: str | None = None) -> list[StoredMessage]: ...

    def search_messages(self, key: str, query: str, limit: int = 5, role: str | None = "user") -> list[StoredMessage]:
        ...

    def forget(self, key: str) -> int: ...

    def put_trace(self, trace_id: str, key: str, trace: dict[str, Any]) -> None: ...

    def get_trace(self, trace_id: str, key: str | None = None) -> dict[str, Any] | None: ...


class SqliteStorage:
    """`Storage` in one SQLite file (WAL, one connection guarded by a lock: safe across the server's threads).
    Each write is committed before the call returns (synchronous=FULL: also through a power cut), so what the
    server acknowledged survives a kill -9."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            if str(path) != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
        migrate(self._db, MIGRATIONS)

    def append_message(self, key: str, conversation: str, role: str, content: str,
                       trace_id: str | None = None) -> int:
        with self._lock, self._db:
            cur = self._db.execute(
                "INSERT INTO messages (key, conversation, role, content, created, trace_id) VALUES (?, ?, ?, ?, ?, ?)",
                (key, conversation, role, content, time.time(), trace_id))
            return int(cur.lastrowid)

    def messages(self, key: str, conversation: str | None = None) -> list[StoredMessage]:
        sql, args = "SELECT id, key, conversation, role, content, created, trace_id FROM messages WHERE key = ?", [key]
        if conversation is not None:
            sql, args = sql + " AND conversation = ?", [*args, conversation]
        with self._lock:
            return [StoredMessage(*row) for row in self._db.execute(sql + " ORDER BY id", args)]

    def search_messages(self, key: str, query: str, limit: int = 5, role: str | None = "user") -> list[StoredMessage]:
        """The key's messages sharing the most words with `query` (ties: the most recent first)."""
        words = {w.lower() for w in _WORD.findall(query) if len(w) > 2}
        if not words:
            return []
        scored = []
        for message in self.messages(key):
            if role is not None and message.role != role:
                continue
            overlap = len(words & {w.lower() for w in _WORD.findall(message.content)})
            if overlap:
                scored.append((overlap, message.id, message))
        scored.sort(key=lambda item: (-item[0], -item[1]))
        return [message for _, _, message in scored[:limit]]

    def forget(self, key: str) -> int:
        """Delete the key's transcript and traces; the number of messages removed."""
        with self._lock, self._db:
            removed = self._db.execute("DELETE FROM messages WHERE key = ?", (key,)).rowcount
            self._db.execute("DELETE FROM traces WHERE key = ?", (key,))
            return removed

    def put_trace(self, trace_id: str, key: str, trace: dict[str, Any]) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO traces (id, key, trace, created) VALUES (?, ?, ?, ?)",
                             (trace_id, key, json.dumps(trace, default=str), time.time()))

    def get_trace(self, trace_id: str, key: str | None = None) -> dict[str, Any] | None:
        """The trace `trace_id`; with `key`, only if it belongs to that key."""
        with self._lock:
            row = self._db.execute("SELECT key, trace FROM traces WHERE id = ?", (trace_id,)).fetchone()
        if row is None or (key is not None and row[0] != key):
            return None
        return json.loads(row[1])

    def close(self) -> None:
        with self._lock:
            self._db.close()
