"""Versioned SQL migrations: files `NNNN_name.sql` in one folder, applied in order, each in its own
transaction. SQLite records the last one applied in `PRAGMA user_version`; PostgreSQL (a `shared.sql.Database`)
takes its files from `folder/postgresql` and records the version in a `schema_version` table (a row per
version and folder name), under an advisory lock so that replicas starting together migrate once.

    applied = migrate(connection, Path(__file__).parent / "migrations")   # [2, 3]: the versions it ran
    applied = migrate(shared.sql.connect(url), folder)                    # the same for a Database

A database made before versioning (user_version 0 with the tables there) takes migration 1 again, so the
first file must only create what is missing (`CREATE TABLE IF NOT EXISTS`). A database newer than the code
is refused rather than used with a schema the code does not know.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from shared.errors import UserError
from shared.sql import Database

_NAME = re.compile(r"^(\d{4})_\w+\.sql$")


def migrations(folder: Path) -> list[tuple[int, Path]]:
    """The folder's migrations by version; raises if the versions are not 1, 2, 3, ... in order."""
    found = sorted((int(m.group(1)), path) for path in folder.iterdir() if (m := _NAME.match(path.name)))
    versions = [version for version, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"{folder}: migrations must be numbered 0001, 0002, ... without gaps; found {versions}")
    return found


def schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _check_not_newer(current: int, known: int) -> None:
    if current > known:
        raise UserError(f"the database is at schema version {current}, newer than this code's {known}: "
                        "upgrade the code, or use another data directory")


def migrate(db: sqlite3.Connection | Database, folder: Path) -> list[int]:
    """Apply the folder's migrations newer than the database's version; the versions applied."""
    if isinstance(db, Database):
        return migrate(db.raw, folder) if db.dialect == "sqlite" else _migrate_postgres(db, folder / "postgresql")
    steps = migrations(folder)
    current = schema_version(db)
    _check_not_newer(current, len(steps))
    applied = []
    for version, path in steps[current:]:
        # executescript commits first and runs the script as is: BEGIN/COMMIT make each file all-or-nothing
        try:
            db.executescript(f"BEGIN;\n{path.read_text()}\nPRAGMA user_version = {version};\nCOMMIT;")
        except sqlite3.Error as err:
            db.rollback()
            raise UserError(f"migration {path.name} failed, the database is left at version {version - 1}: "
                            f"{err}") from err
        applied.append(version)
    return applied


def _migrate_postgres(db: Database, folder: Path) -> list[int]:
    import psycopg

    steps = migrations(folder)
    applied, failed = [], None
    name = folder.parent.name  # one database may hold several sets (month 6: assistant, keys)
    with db.transaction():  # one replica at a time: the others wait here, then find nothing left to apply
        db.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (name,))
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (name TEXT NOT NULL, version INTEGER NOT NULL)")
        current = int(db.execute("SELECT max(version) FROM schema_version WHERE name = ?", (name,)).fetchone()[0] or 0)
        _check_not_newer(current, len(steps))
        for version, path in steps[current:]:
            try:
                with db.raw.transaction():  # a savepoint: a failing file undoes itself, not the files before it
                    db.raw.execute(path.read_text())
                    db.execute("INSERT INTO schema_version (name, version) VALUES (?, ?)", (name, version))
            except psycopg.Error as err:
                failed = (path, version, err)
                break
            applied.append(version)
    if failed:
        path, version, err = failed
        raise UserError(f"migration {path.name} failed, the database is left at version {version - 1}: {err}")
    return applied
