"""One SQL connection, to a SQLite file or a PostgreSQL server, with SQL written once.

    db = connect("runs/month6/data/assistant.sqlite")            # embedded: one process
    db = connect("postgresql://assistant@db:5432/assistant")     # shared by every replica
    with db.transaction():
        rows = db.execute("SELECT id FROM messages WHERE key = ?", ("team-a",)).fetchall()

Statements use `?` placeholders (translated to psycopg's `%s`) and the SQL both dialects share (`INSERT ...
ON CONFLICT`, `RETURNING`). One connection per process, guarded by a lock: `transaction()` holds it and
commits at the end (rolls back on an exception). Each dialect has its own migrations folder
(`shared.migrations.migrate(db, folder)`: `folder` for SQLite, `folder/postgresql` for PostgreSQL).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.errors import UserError

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(target: str | Path) -> bool:
    return str(target).startswith(POSTGRES_SCHEMES)


@dataclass
class Result:
    rows: list[tuple]
    rowcount: int

    def fetchone(self) -> tuple | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[tuple]:
        return self.rows


class Database:
    def __init__(self, raw: Any, dialect: str, target: str) -> None:
        self.raw, self.dialect, self.target = raw, dialect, target
        self._lock = threading.RLock()

    def execute(self, sql: str, args: tuple | list = ()) -> Result:
        """Run one statement; its rows and rowcount. A write outside `transaction()` is
        committed at once on PostgreSQL (autocommit) and with the next commit on SQLite: write inside one."""
        if self.dialect == "postgresql":
            sql = sql.replace("?", "%s")
        with self._lock:  # rows fetched under the lock: another thread's statement cannot interleave
            cursor = self.raw.execute(sql, args)
            rows = cursor.fetchall() if cursor.description is not None else []
            return Result(rows, cursor.rowcount)

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """The block's statements all or none (committed at its end, rolled back on an exception)."""
        with self._lock:
            if self.dialect == "postgresql":
                with self.raw.transaction():
                    yield self
                return
            try:
                yield self
            except BaseException:
                self.raw.rollback()
                raise
            self.raw.commit()

    def close(self) -> None:
        with self._lock:
            self.raw.close()


def connect(target: str | Path) -> Database:
    """A SQLite file (WAL, synchronous=FULL: what was committed survives a kill -9 and a power cut), ":memory:",
    or a `postgresql://` URL (psycopg 3, from the `scale` extra)."""
    if is_postgres(target):
        try:
            import psycopg
        except ImportError:
            raise UserError("a postgresql:// database needs psycopg: pip install -e '.[scale]'") from None
        try:
            raw = psycopg.connect(str(target), connect_timeout=10, autocommit=True)
        except psycopg.OperationalError as err:
            raise UserError(f"cannot connect to {redact(str(target))}: {str(err).strip()}") from None
        return Database(raw, "postgresql", str(target))
    path = str(target)
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    raw = sqlite3.connect(path, check_same_thread=False)
    if path != ":memory:":
        raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=FULL")
    return Database(raw, "sqlite", path)


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
