"""API keys: created and revoked by an admin, stored hashed, sent as `Authorization: Bearer <key>`.

    python -m month6_system keys create team-a      # prints the key once: sk-hyb-...
    python -m month6_system keys list               # names, prefixes, created, revoked
    python -m month6_system keys revoke team-a
    python -m month6_system keys create team-a      # after a revoke: a new key for the same scope (rotation)

A key's name is its scope: the `Turn.key` of its requests, so its conversations, memory, traces and
document collection (`ingest --key team-a`) are its own. Only the SHA-256 of a key is stored: keys are
32 random bytes, so a fast hash is enough (slow hashes are for passwords people choose), and a stolen
database holds no usable key. The store is one SQLite file next to the assistant's data, or the tables of
`Settings.database_url` (PostgreSQL) when replicas share it.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from month6_system.turn import DEFAULT_KEY
from shared.errors import UserError
from shared.migrations import migrate
from shared.sql import Database, connect, redact

PREFIX = "sk-hyb-"
KEYS_FILE = "keys.sqlite"
# a scope is also a month-5 (Chroma) collection name: 3-63 characters, alphanumeric at both ends
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$")
MIGRATIONS = Path(__file__).parent / "migrations" / "keys"  # versioned SQL (shared.migrations)


@dataclass(frozen=True)
class KeyInfo:
    name: str
    prefix: str  # the first characters of the key, to tell keys apart in a listing
    created: float
    revoked: float | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyStore:
    """The API keys of one data folder (a SQLite file, created with the first key), or of the PostgreSQL
    database that `database_url` names (shared by every replica). `scope(key)` is the name of a live key, or None."""

    def __init__(self, data_dir: str | Path, database_url: str = "") -> None:
        self.path = Path(data_dir) / KEYS_FILE
        self.database_url = database_url
        self.location = redact(database_url) if database_url else str(self.path)
        self._db: Database | None = None
        self._lock = threading.Lock()

    def _connect(self, create: bool) -> Database | None:
        if self._db is None and (create or self.database_url or self.path.exists()):
            db = connect(self.database_url or self.path)
            migrate(db, MIGRATIONS)
            self._db = db
        return self._db

    def create(self, name: str) -> str:
        """A new key for scope `name` (shown once; only its hash is kept)."""
        if not NAME.match(name):
            raise UserError(f"key name {name!r}: use 3-63 lowercase letters, digits, '-' or '_', "
                            "starting and ending with a letter or digit")
        if name == DEFAULT_KEY:
            raise UserError(f"{DEFAULT_KEY!r} is the scope of requests made without keys; choose another name")
        key = PREFIX + secrets.token_urlsafe(32)
        with self._lock:
            db = self._connect(create=True)
            with db.transaction():  # a revoked name gets a new key (rotation: the scope's data stays with the name)
                added = db.execute(
                    "INSERT INTO api_keys (name, hash, prefix, created) VALUES (?, ?, ?, ?) ON CONFLICT (name) "
                    "DO UPDATE SET hash = excluded.hash, prefix = excluded.prefix, created = excluded.created, "
                    "revoked = NULL WHERE api_keys.revoked IS NOT NULL",
                    (name, hash_key(key), key[:len(PREFIX) + 4], time.time())).rowcount
        if not added:
            raise UserError(f"a live key named {name!r} exists already (revoke it first to rotate it)")
        return key

    def revoke(self, name: str) -> None:
        with self._lock:
            db = self._connect(create=False)
            changed = 0
            if db is not None:
                with db.transaction():
                    changed = db.execute("UPDATE api_keys SET revoked = ? WHERE name = ? AND revoked IS NULL",
                                         (time.time(), name)).rowcount
        if not changed:
            raise UserError(f"no live key named {name!r} (see: keys list)")

    def list(self) -> list[KeyInfo]:
        with self._lock:
            db = self._connect(create=False)
            rows = [] if db is None else db.execute("SELECT name, prefix, created, revoked FROM api_keys "
                                                    "ORDER BY created").fetchall()
        return [KeyInfo(*row) for row in rows]

    def any_live(self) -> bool:
        with self._lock:
            db = self._connect(create=False)
            return db is not None and db.execute(
                "SELECT 1 FROM api_keys WHERE revoked IS NULL LIMIT 1").fetchone() is not None

    def scope(self, key: str) -> str | None:
        with self._lock:
            db = self._connect(create=False)
            row = None if db is None else db.execute(
                "SELECT name FROM api_keys WHERE hash = ? AND revoked IS NULL", (hash_key(key),)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


# -- the admin command ------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    from month6_system.settings import Settings

    parser.add_argument("action", choices=("create", "revoke", "list"), help="what to do")
    parser.add_argument("name", nargs="?", help="the key's name, which is its scope (create, revoke)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"the assistant's data folder (default: {Settings.model_fields['data_dir'].default})")


def main(args: argparse.Namespace) -> None:
    from month6_system.settings import load_settings

    settings = load_settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    store = KeyStore(settings.data_dir, settings.database_url)
    if args.action == "list":
        keys = store.list()
        if not keys:
            print(f"no keys in {store.location} (requests need none while no live key exists)")
        for k in keys:
            state = "revoked " + _when(k.revoked) if k.revoked else "live"
            print(f"{k.name:<24} {k.prefix}...  created {_when(k.created)}  {state}")
        return
    if not args.name:
        raise UserError(f"keys {args.action} needs a NAME")
    if args.action == "create":
        key = store.create(args.name)
        print(key)
        print(f"# key {args.name!r} created in {store.location}; it is shown only now. "
              f"Send it as 'Authorization: Bearer <key>' (openai: api_key=...).")
    else:
        store.revoke(args.name)
        print(f"revoked {args.name!r}; its requests now get 401")


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))
