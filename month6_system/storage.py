"""The durable record: conversation transcripts and request traces, behind a small `Storage` interface.

    store = SqlStorage("runs/month6/data/assistant.sqlite")      # or a postgresql:// URL (Settings.database_url)
    store.append_message("team-a", "conv-1", "user", "my badge id is K7Q2X")
    store.messages("team-a", "conv-1")             # [StoredMessage(...)]
    store.search_messages("team-a", "badge id")    # transcript search: memory's fallback
    store.put_trace("trace-1", "team-a", {...}); store.get_trace("trace-1")

Everything is scoped by a key (`Turn.key`, the API key's scope): one key never sees another's rows.
SQLite is the embedded default (one process); PostgreSQL holds the same tables for replicas that share them
(the same SQL through `shared.sql`, each dialect with its own migrations).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from shared.migrations import migrate
from shared.sql import connect

MIGRATIONS = Path(__file__).parent / "migrations" / "assistant"  # versioned SQL, applied in order (shared.migrations)
_WORD = re.compile(r"\w+")
# Words of a question that a statement of the fact need not contain ("what was my badge number?").
_QUESTION_WORDS = {"what", "which", "was", "were", "the", "did", "does", "you", "your", "remember", "tell", "say",
                   "said", "know", "again"}


def words_of(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def query_words(query: str) -> set[str]:
    """The words a search looks for: those of more than two letters ("my", "is" match everything)."""
    return {w for w in words_of(query) if len(w) > 2}


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

    def stated(self, key: str, value: str, query: str) -> StoredMessage | None: ...

    def forget(self, key: str) -> int: ...

    def put_trace(self, trace_id: str, key: str, trace: dict[str, Any]) -> None: ...

    def get_trace(self, trace_id: str, key: str | None = None) -> dict[str, Any] | None: ...

    def update_memory_state(self, key: str, update: Callable[[bytes | None], tuple[bytes, int]]) -> None: ...

    def get_memory_state(self, key: str) -> bytes | None: ...


class SqlStorage:
    """`Storage` in SQLite (a path) or PostgreSQL (a URL), one connection guarded by a lock: safe across the
    server's threads. Each write is committed before the call returns (SQLite: synchronous=FULL, so also
    through a power cut), so what the server acknowledged survives a kill -9."""

    def __init__(self, target: str | Path) -> None:
        self.db = connect(target)
        migrate(self.db, MIGRATIONS)

    def append_message(self, key: str, conversation: str, role: str, content: str,
                       trace_id: str | None = None) -> int:
        with self.db.transaction():
            return int(self.db.execute(
                "INSERT INTO messages (key, conversation, role, content, created, trace_id) VALUES (?, ?, ?, ?, ?, ?) "
                "RETURNING id", (key, conversation, role, content, time.time(), trace_id)).fetchone()[0])

    def messages(self, key: str, conversation: str | None = None) -> list[StoredMessage]:
        sql, args = "SELECT id, key, conversation, role, content, created, trace_id FROM messages WHERE key = ?", [key]
        if conversation is not None:
            sql, args = sql + " AND conversation = ?", [*args, conversation]
        return [StoredMessage(*row) for row in self.db.execute(sql + " ORDER BY id", args).fetchall()]

    def search_messages(self, key: str, query: str, limit: int = 5, role: str | None = "user") -> list[StoredMessage]:
        """The key's messages sharing the most words with `query` (ties: the most recent first)."""
        words = query_words(query)
        if not words:
            return []
        scored = []
        for message in self.messages(key):
            if role is not None and message.role != role:
                continue
            overlap = len(words & words_of(message.content))
            if overlap:
                scored.append((overlap, message.id, message))
        scored.sort(key=lambda item: (-item[0], -item[1]))
        return [message for _, _, message in scored[:limit]]

    def stated(self, key: str, value: str, query: str) -> StoredMessage | None:
        """The key's latest user message that contains `value` and every word of `query` (question words aside):
        where the user said it. Finds the value in SQL (LIKE), so only those messages are read."""
        words = query_words(query) - _QUESTION_WORDS
        if not value.strip() or not words:
            return None
        pattern = "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self.db.execute("SELECT id, key, conversation, role, content, created, trace_id FROM messages "
                               "WHERE key = ? AND role = 'user' AND content LIKE ? ESCAPE '\\' ORDER BY id DESC",
                               (key, pattern)).fetchall()
        for row in rows:
            message = StoredMessage(*row)
            if value in message.content and words <= words_of(message.content):
                return message
        return None

    def forget(self, key: str) -> int:
        """Delete the key's transcript, traces and long-memory state; the number of messages removed."""
        with self.db.transaction():
            removed = self.db.execute("DELETE FROM messages WHERE key = ?", (key,)).rowcount
            self.db.execute("DELETE FROM traces WHERE key = ?", (key,))
            self.db.execute("DELETE FROM memory_states WHERE key = ?", (key,))
            return removed

    def put_trace(self, trace_id: str, key: str, trace: dict[str, Any]) -> None:
        with self.db.transaction():
            self.db.execute("INSERT INTO traces (id, key, trace, created) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO "
                            "UPDATE SET key = excluded.key, trace = excluded.trace, created = excluded.created",
                            (trace_id, key, json.dumps(trace, default=str), time.time()))

    def get_trace(self, trace_id: str, key: str | None = None) -> dict[str, Any] | None:
        """The trace `trace_id`; with `key`, only if it belongs to that key."""
        row = self.db.execute("SELECT key, trace FROM traces WHERE id = ?", (trace_id,)).fetchone()
        if row is None or (key is not None and row[0] != key):
            return None
        return json.loads(row[1])

    def update_memory_state(self, key: str, update: Callable[[bytes | None], tuple[bytes, int]]) -> None:
        """Replace the key's long-memory state (month 3's LongMemory.to_bytes) with `update(the stored state or
        None)`, which returns (new state, tokens read), as one step: replicas extending one key's memory at the
        same moment take turns (PostgreSQL: an advisory lock on the key until the commit; SQLite, one process:
        the connection's lock) instead of the later write dropping what the earlier one added."""
        with self.db.transaction():
            if self.db.dialect == "postgresql":
                self.db.execute("SELECT pg_advisory_xact_lock(hashtext(?))", ("memory_states:" + key,))
            row = self.db.execute("SELECT state FROM memory_states WHERE key = ?", (key,)).fetchone()
            state, tokens = update(bytes(row[0]) if row is not None else None)
            self.db.execute("INSERT INTO memory_states (key, tokens, state, updated) VALUES (?, ?, ?, ?) ON CONFLICT "
                            "(key) DO UPDATE SET tokens = excluded.tokens, state = excluded.state, "
                            "updated = excluded.updated", (key, tokens, state, time.time()))

    def get_memory_state(self, key: str) -> bytes | None:
        row = self.db.execute("SELECT state FROM memory_states WHERE key = ?", (key,)).fetchone()
        return bytes(row[0]) if row is not None else None

    def close(self) -> None:
        self.db.close()
