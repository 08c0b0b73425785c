"""Month 3's long memory for the assistant: one constant-size state per API key, kept in the storage (SQLite or
PostgreSQL), so every replica reads and extends the same memory.

    memory = KeyedMemory.from_checkpoint(storage)        # month 3's sentence reader (checkpoints/memory.pt)
    memory.write("team-a", "My badge number is K7Q2X.")  # each user message, as it is stored
    memory.recall("team-a", "my badge number")           # month 3's Recall: answer, confidence, prompt

What a key has said is streamed through the reader once, as it arrives, and only the reader's state is kept
(about 40 KB whatever the history's length); the transcript stays the durable record and the fallback
(tools.recall_memory_tool asks this first and searches the transcript when the confidence is low).
"""

from __future__ import annotations

import threading
from pathlib import Path

from month3_mamba.memory import LongMemory, Recall
from month6_system.storage import Storage


class KeyedMemory:
    """LongMemory states by key over one reader. Each call reads the key's state from the storage (about 40 KB:
    a few milliseconds), so replicas never answer from a stale copy and a forgotten key is forgotten everywhere."""

    def __init__(self, reader: LongMemory, storage: Storage) -> None:
        self.reader, self.storage = reader, storage
        self._lock = threading.Lock()  # one model and one reader state, many server threads

    @classmethod
    def from_checkpoint(cls, storage: Storage, path: str | Path | None = None) -> KeyedMemory:
        from month3_mamba.families import MEMORY_CKPT

        return cls(LongMemory.from_checkpoint(path or MEMORY_CKPT), storage)

    def _restore(self, saved: bytes | None) -> LongMemory:
        self.reader.reset()
        return self.reader.from_bytes(saved) if saved is not None else self.reader

    def write(self, key: str, text: str) -> None:
        """Stream `text` into the key's state and store the state (in one storage step: replicas writing the
        same key at once take turns)."""

        def extend(saved: bytes | None) -> tuple[bytes, int]:
            memory = self._restore(saved)
            memory.write(text.strip() + " ")
            return memory.to_bytes(), memory.tokens

        with self._lock:
            self.storage.update_memory_state(key, extend)

    def recall(self, key: str, question: str) -> Recall:
        with self._lock:
            return self._restore(self.storage.get_memory_state(key)).recall(question)

    def for_key(self, key: str) -> KeyRecall:
        return KeyRecall(self, key)


class KeyRecall:
    """One key's view: what tools.recall_memory_tool calls (`recall(question)`)."""

    def __init__(self, memory: KeyedMemory, key: str) -> None:
        self.memory, self.key = memory, key

    def recall(self, question: str) -> Recall:
        return self.memory.recall(self.key, question)
