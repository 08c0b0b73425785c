"""Versioned SQL migrations for SQLite: files `NNNN_name.sql` in one folder, applied in order, each in
its own transaction, the database's `PRAGMA user_version` recording the last one applied.

    applied = migrate(connection, Path(__file__).parent / "migrations")   # [2, 3]: the versions it ran

A database made before versioning (user_version 0 with the tables there) takes migration 1 again, so the
first file must only create what is missing (`CREATE TABLE IF NOT EXISTS`). A database newer than the code
is refused rather than used with a schema the code does not know.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from shared.errors import UserError

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


def migrate(db: sqlite3.Connection, folder: Path) -> list[int]:
    """Apply the folder's migrations newer than the database's version; the versions applied."""
    steps = migrations(folder)
    current = schema_version(db)
    if current > len(steps):
        raise UserError(f"the database is at schema version {current}, newer than this code's {len(steps)}: "
                        "upgrade the code, or use another data directory")
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
