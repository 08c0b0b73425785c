"""Shared state for replicas (`Settings.database_url`): the same storage contract on SQLite and on a real
PostgreSQL server (started on loopback for this module), API keys and rate limits that two servers share, and
the PostgreSQL migrations (once, under a lock, a newer database refused)."""

from __future__ import annotations

import threading

import httpx
import pytest

from month6_system.keys import KeyStore
from month6_system.limits import SharedRateLimiter
from month6_system.storage import MIGRATIONS, SqlStorage
from shared.errors import UserError
from shared.migrations import migrate
from shared.postgres_server import installed
from shared.sql import connect

pytestmark = pytest.mark.skipif(not installed(), reason="no PostgreSQL server (.ci/run installs it)")


@pytest.fixture(scope="module")
def server() -> str:
    from shared.postgres_server import temporary_postgres

    with temporary_postgres() as url:
        yield url


@pytest.fixture
def database_url(server: str, request) -> str:
    """A fresh database on the module's server for each test."""
    name = "t_" + request.node.name.lower().replace("[", "_").replace("]", "").replace("-", "_")[:50]
    admin = connect(server)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return server.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> SqlStorage:
    target = tmp_path / "assistant.sqlite" if request.param == "sqlite" else request.getfixturevalue("database_url")
    store = SqlStorage(target)
    yield store
    store.close()


def test_the_storage_contract_holds_on_both_databases(store):
    first = store.append_message("team-a", "c1", "user", "my badge id is K7Q2X")
    store.append_message("team-a", "c1", "assistant", "Noted.", trace_id="trace-1")
    store.append_message("team-a", "c2", "user", "the parking spot is B12")
    store.append_message("team-b", "c1", "user", "my badge id is ZZZ")
    assert [m.content for m in store.messages("team-a", "c1")] == ["my badge id is K7Q2X", "Noted."]
    assert [m.conversation for m in store.messages("team-a")] == ["c1", "c1", "c2"]
    assert store.messages("team-a")[0].id == first and store.messages("team-a")[1].trace_id == "trace-1"
    assert [m.content for m in store.search_messages("team-a", "what is my badge id?")] == ["my badge id is K7Q2X"]
    assert store.stated("team-a", "K7Q2X", "What was my badge id?").id == first  # value and words, any case
    assert store.stated("team-a", "K7Q2%", "my badge id") is None  # % is text, not a wildcard
    assert store.stated("team-a", "K7Q2X", "my locker id") is None and store.stated("team-b", "K7Q2X", "badge") is None
    store.put_trace("trace-1", "team-a", {"expert": "chat"})
    store.put_trace("trace-1", "team-a", {"expert": "math"})  # the same id again replaces it
    assert store.get_trace("trace-1", "team-a") == {"expert": "math"}
    assert store.get_trace("trace-1", "team-b") is None and store.get_trace("nope") is None
    blob = bytes(range(256)) * 40  # a long-memory state: binary, every byte value
    store.update_memory_state("team-a", lambda saved: (b"older", 5))
    store.update_memory_state("team-a", lambda saved: (saved + blob, 1234))  # sees the stored state, replaces it
    assert store.get_memory_state("team-a") == b"older" + blob and store.get_memory_state("team-b") is None
    assert store.forget("team-a") == 3
    assert store.messages("team-a") == [] and store.get_trace("trace-1") is None
    assert store.get_memory_state("team-a") is None
    assert [m.content for m in store.messages("team-b")] == ["my badge id is ZZZ"]


def test_two_replicas_share_one_postgres_transcript(database_url):
    a, b = SqlStorage(database_url), SqlStorage(database_url)  # the second one's migrations find nothing to do
    a.append_message("team-a", "c1", "user", "written by replica a")
    b.append_message("team-a", "c1", "assistant", "written by replica b")
    a.put_trace("trace-9", "team-a", {"replica": "a"})
    assert [m.content for m in b.messages("team-a", "c1")] == ["written by replica a", "written by replica b"]
    assert b.get_trace("trace-9", "team-a") == {"replica": "a"}
    a.close(), b.close()


def test_replicas_starting_together_migrate_once(database_url):
    applied, errors = [], []

    def start() -> None:
        try:
            db = connect(database_url)
            applied.append(migrate(db, MIGRATIONS))
            db.close()
        except Exception as err:  # noqa: BLE001 (reported below)
            errors.append(err)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(applied) == [[], [], [], [1, 2, 3]]  # the advisory lock: one ran them, three found them done


def test_a_newer_postgres_schema_is_refused_and_a_failing_migration_keeps_the_earlier_ones(database_url, tmp_path):
    db = connect(database_url)
    migrate(db, MIGRATIONS)
    with db.transaction():
        db.execute("INSERT INTO schema_version (name, version) VALUES ('assistant', 99)")
    with pytest.raises(UserError, match="schema version 99, newer than this code's 3"):
        migrate(db, MIGRATIONS)
    folder = tmp_path / "m"
    (folder / "postgresql").mkdir(parents=True)
    (folder / "postgresql" / "0001_pets.sql").write_text("CREATE TABLE pets (name TEXT);")
    (folder / "postgresql" / "0002_bad.sql").write_text("CREATE TABLE toys (name TEXT);\n"
                                                        "ALTER TABLE nowhere ADD x int;")
    other = connect(database_url.rsplit("/", 1)[0] + "/assistant")  # the server's own database: no schema yet
    with pytest.raises(UserError, match="0002_bad.sql failed, the database is left at version 1"):
        migrate(other, folder)
    tables = {r[0] for r in other.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()}
    assert "pets" in tables and "toys" not in tables
    assert other.execute("SELECT name, max(version) FROM schema_version GROUP BY name").fetchall() == [("m", 1)]
    other.close(), db.close()


def test_api_keys_in_postgres_are_seen_by_every_replica(database_url, tmp_path):
    a, b = KeyStore(tmp_path / "a", database_url), KeyStore(tmp_path / "b", database_url)
    key = a.create("team-a")
    assert b.scope(key) == "team-a" and b.any_live()
    with pytest.raises(UserError, match="a live key named 'team-a' exists already"):
        b.create("team-a")
    b.revoke("team-a")
    assert a.scope(key) is None and [k.name for k in a.list()] == ["team-a"]
    assert not (tmp_path / "a").exists()  # nothing written to the data folders
    a.close(), b.close()


def test_a_shared_rate_limit_is_one_bucket_across_replicas(database_url):
    SqlStorage(database_url).close()  # the tables
    a = SharedRateLimiter(connect(database_url), per_minute=6, burst=3)
    b = SharedRateLimiter(connect(database_url), per_minute=6, burst=3)
    waits = [limiter.take("team-a") for limiter in (a, b, a, b)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 9.0 < waits[3] <= 10.0  # the 4th request of the burst, on either replica: one token comes in 10 s
    assert b.take("team-b") == 0.0  # another key has its own bucket


def test_concurrent_requests_never_take_more_than_the_burst(database_url):
    SqlStorage(database_url).close()
    limiters = [SharedRateLimiter(connect(database_url), per_minute=1, burst=10) for _ in range(4)]
    allowed = []

    def hammer(limiter: SharedRateLimiter) -> None:
        allowed.extend(1 for _ in range(8) if limiter.take("team-a") == 0.0)

    threads = [threading.Thread(target=hammer, args=(limiter,)) for limiter in limiters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 10  # 32 attempts from 4 connections at once: exactly the burst got through


def test_replicas_extending_one_keys_memory_at_once_lose_nothing(database_url):
    from month6_system.long_memory import KeyedMemory
    from month6_system.tests.test_long_memory import reader

    stores = [SqlStorage(database_url) for _ in range(2)]  # two replicas: two connections
    memories = [KeyedMemory(reader(), store) for store in stores]
    messages = [f"Message {i} from replica {r}." for r in range(2) for i in range(12)]

    def talk(replica: int) -> None:
        for text in messages[replica * 12 : (replica + 1) * 12]:
            memories[replica].write("team-a", text)

    threads = [threading.Thread(target=talk, args=(replica,)) for replica in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tokens = stores[0].db.execute("SELECT tokens FROM memory_states WHERE key = ?", ("team-a",)).fetchone()[0]
    assert tokens == sum(len(text) + 1 for text in messages)  # every message read once: no write lost the other's
    for store in stores:
        store.close()


def test_two_servers_on_one_database_share_keys_limits_and_transcripts(database_url, tmp_path):
    from month6_system.app import create_app
    from month6_system.serve import start_in_thread
    from month6_system.settings import Settings
    from month6_system.tests.conftest import ScriptedWithRecords

    servers = []
    for name in ("a", "b"):
        settings = Settings(data_dir=tmp_path / name, database_url=database_url, rate_limit_per_minute=1,
                            rate_limit_burst=4)
        servers.append(start_in_thread(create_app(settings, ScriptedWithRecords(tmp_path / name, database_url))))
    try:
        key = KeyStore(tmp_path, database_url).create("team-a")
        headers = {"Authorization": f"Bearer {key}"}
        body = {"model": "hybrid-assistant", "messages": [{"role": "user", "content": "remember the blue door"}],
                "metadata": {"conversation_id": "shared"}}
        chat = f"{servers[0].url}/v1/chat/completions"
        first = httpx.post(chat, json=body, headers=headers, timeout=30)  # 1 of the burst of 4, on server a
        trace = httpx.get(f"{servers[1].url}/v1/traces/{first.json()['trace_id']}", headers=headers, timeout=10)
        assert first.status_code == trace.status_code == 200  # a's trace, read from b (2 of 4)
        assert trace.json()["trace"]["assistant"] == "scripted"
        statuses = [httpx.post(f"{servers[i % 2].url}/v1/chat/completions", json=body, headers=headers,
                               timeout=30).status_code for i in range(4)]
        assert statuses == [200, 200, 429, 429]  # 3 and 4 of the burst, then either server refuses
        assert httpx.get(f"{servers[1].url}/v1/models", timeout=10).status_code == 401  # b knows a's key exists
    finally:
        for background in servers:
            background.stop()
