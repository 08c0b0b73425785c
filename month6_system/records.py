"""What a key has given the assistant, for /v1/documents and /v1/memory: its documents (month 5's store, one
collection per key) and its transcript (`Storage`). Plain data out; the server turns it into JSON.

    records = Records(rag, storage)
    records.add_documents("team-a", [Path("handbook.pdf")])   # month 5's IngestReport as a dict (per-file errors)
    records.documents("team-a")                               # [{"name", "path", "chunks", "pages", ...}]
    records.delete_document("team-a", "handbook.pdf")
    records.memory("team-a"); records.forget("team-a")        # the transcript; and deleting it
"""

from __future__ import annotations

import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from month6_system.storage import Storage


class Records:
    def __init__(self, rag, storage: Storage, lock: threading.Lock | None = None) -> None:
        self.rag, self.storage = rag, storage
        self.lock = lock or threading.Lock()  # month 5's store and manifest: one user at a time

    def add_documents(self, key: str, paths: list[Path]) -> dict[str, Any]:
        with self.lock:
            report = self.rag.ingest(paths, collection=key)
        return report.as_dict()

    def documents(self, key: str) -> list[dict[str, Any]]:
        with self.lock:
            files = self.rag.files(key) if key in self.rag.collections() else []
        return [{"name": Path(f["path"]).name, **f} for f in files]

    def delete_document(self, key: str, name: str) -> int:
        """Deletes the key's documents of that file name (a plain name, never a path); how many it deleted."""
        with self.lock:
            files = self.rag.files(key) if key in self.rag.collections() else []
            paths = [f["path"] for f in files if Path(f["path"]).name == name]
            for path in paths:  # the stored path: month 5 never reads `name` as a path of this machine
                self.rag.delete(path, key)
        return len(paths)

    def memory(self, key: str) -> list[dict[str, Any]]:
        return [asdict(m) for m in self.storage.messages(key)]

    def forget(self, key: str) -> int:
        return self.storage.forget(key)
