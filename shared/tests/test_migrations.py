"""shared.migrations: versioned SQL files applied in order, each all-or-nothing, recorded in user_version."""

from __future__ import annotations

import sqlite3

import pytest

from shared.errors import UserError
from shared.migrations import migrate, schema_version


def write(folder, files: dict[str, str]):
    folder.mkdir(exist_ok=True)
    for name, sql in files.items():
        (folder / name).write_text(sql)
    return folder


def test_migrations_apply_in_order_once_and_keep_the_data(tmp_path):
    folder = write(tmp_path / "m", {"0001_people.sql": "CREATE TABLE people (name TEXT);",
                                    "0002_age.sql": "ALTER TABLE people ADD COLUMN age INTEGER;"})
    db = sqlite3.connect(tmp_path / "db.sqlite")
    assert migrate(db, folder) == [1, 2] and schema_version(db) == 2
    db.execute("INSERT INTO people VALUES ('ada', 36)")
    db.commit()
    write(folder, {"0003_city.sql": "ALTER TABLE people ADD COLUMN city TEXT DEFAULT 'london';"})
    assert migrate(db, folder) == [3] and migrate(db, folder) == []
    assert db.execute("SELECT * FROM people").fetchall() == [("ada", 36, "london")]


def test_a_failing_migration_changes_nothing_and_says_which(tmp_path):
    folder = write(tmp_path / "m", {"0001_people.sql": "CREATE TABLE people (name TEXT);",
                                    "0002_bad.sql": "CREATE TABLE pets (name TEXT);\nALTER TABLE nowhere ADD x;"})
    db = sqlite3.connect(tmp_path / "db.sqlite")
    with pytest.raises(UserError, match="0002_bad.sql failed, the database is left at version 1"):
        migrate(db, folder)
    assert schema_version(db) == 1
    assert [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["people"]


def test_gaps_and_a_database_newer_than_the_code_are_refused(tmp_path):
    db = sqlite3.connect(tmp_path / "db.sqlite")
    with pytest.raises(ValueError, match="without gaps"):
        migrate(db, write(tmp_path / "gap", {"0001_a.sql": "SELECT 1;", "0003_c.sql": "SELECT 1;"}))
    db.execute("PRAGMA user_version = 5")
    with pytest.raises(UserError, match="schema version 5, newer than this code's 1"):
        migrate(db, write(tmp_path / "one", {"0001_a.sql": "SELECT 1;"}))
