"""Persistence: the transcript's schema migrates from the oldest layout to the newest with its data, and a
kill -9 of the real server in the middle of streamed answers loses no acknowledged message, corrupts nothing,
and the restarted server has the conversation and the uploaded documents."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from month6_system.storage import MIGRATIONS, SqlStorage
from shared.migrations import migrations, schema_version

# The layout the first release created (no user_version), with a row in it.
FIRST_RELEASE = """
CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, conversation TEXT NOT NULL,
                       role TEXT NOT NULL, content TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX messages_by_key ON messages (key, conversation, id);
CREATE TABLE traces (id TEXT PRIMARY KEY, key TEXT NOT NULL, trace TEXT NOT NULL, created REAL NOT NULL);
INSERT INTO messages VALUES (1, 'team-a', 'c1', 'user', 'my badge is K7Q2X', 1);
INSERT INTO traces VALUES ('trace-1', 'team-a', '{"expert": "chat"}', 1);
"""


def test_the_first_release_database_migrates_to_the_newest_schema_with_its_data(tmp_path):
    path = tmp_path / "assistant.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(FIRST_RELEASE)
    store = SqlStorage(path)
    assert [m.content for m in store.messages("team-a")] == ["my badge is K7Q2X"]
    assert store.get_trace("trace-1", "team-a") == {"expert": "chat"}
    store.append_message("team-a", "c1", "assistant", "Noted.", trace_id="trace-2")
    assert store.messages("team-a")[-1].trace_id == "trace-2"
    store.close()
    with sqlite3.connect(path) as db:
        assert schema_version(db) == len(migrations(MIGRATIONS)) >= 2
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert "traces_by_key" in {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    SqlStorage(path).close()  # opening a current database again changes nothing


def test_a_new_database_gets_every_migration(tmp_path):
    SqlStorage(tmp_path / "new.sqlite").close()
    with sqlite3.connect(tmp_path / "new.sqlite") as db:
        assert schema_version(db) == len(migrations(MIGRATIONS))


# -- kill -9 of the real server -----------------------------------------------------------------------
SEED = 2026
STORY = "Tell me a long story about a dragon who counts stars, number {}."


@dataclass
class Server:
    process: subprocess.Popen
    http: httpx.Client

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


@contextmanager
def server(data: Path, log: Path) -> Iterator[Server]:
    """`python -m month6_system serve` in its own process (one torch thread), once /readyz says loaded."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "HYBRID_AI_THREADS": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    with log.open("a") as out:
        process = subprocess.Popen([sys.executable, "-m", "month6_system", "serve", "--port", str(port),
                                    "--data-dir", str(data)], env=env, stdout=out, stderr=subprocess.STDOUT)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
    try:
        deadline = time.monotonic() + 240
        while True:
            assert process.poll() is None, f"the server exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "the server did not get ready in 240 s"
            try:
                if http.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        yield Server(process, http)
    finally:
        http.close()
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def ask(http: httpx.Client, text: str, **extra) -> httpx.Response:
    return http.post("/v1/chat/completions", json={"model": "hybrid-assistant", "metadata": {"conversation_id": "c1"},
                                                   "messages": [{"role": "user", "content": text}], **extra})


def stream_then_kill(target: Server, text: str, pieces: int) -> int:
    """Stream an answer and kill the server once `pieces` pieces of text came; how many did come."""
    seen = 0
    body = {"model": "hybrid-assistant", "stream": True, "max_tokens": 200, "metadata": {"conversation_id": "c1"},
            "messages": [{"role": "user", "content": text}]}
    with target.http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: {"):
                delta = json.loads(line[6:])["choices"][0]["delta"] if json.loads(line[6:])["choices"] else {}
                seen += bool(delta.get("content"))
            if seen >= pieces:
                target.kill()
                break
    return seen


def handbook(i: int) -> str:
    """A document of some 40 paragraphs, so that its ingestion takes a while."""
    rules = [f"Rule {i}.{n}: in building {i}, meeting room {n} seats {n + 4} people and is booked through the "
             f"facilities desk at least {n % 5 + 1} days ahead." for n in range(40)]
    return f"Handbook of building {i}\n\nThe parking rule for building {i}: park on level {i + 1} only.\n\n" + \
        "\n\n".join(rules)


def _ignore_errors(call, *args, **kwargs) -> None:
    try:
        call(*args, **kwargs)
    except httpx.TransportError:  # the server was killed under the request
        pass


def memory(http: httpx.Client) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in http.get("/v1/memory").json()["data"]]


@pytest.mark.model
@pytest.mark.slow
def test_kill_9_mid_stream_loses_no_acknowledged_message(tmp_path):
    """Three rounds: an answered question (acknowledged: its question and answer), then a streamed answer
    killed after a random number of pieces (0: right after the status line, when the question is not yet
    acknowledged). Each restart must show every acknowledged message, in order, and no half answer. Then a kill
    during the ingestion of an upload: after it, what is listed is whole or marked partial, and uploading again
    completes it (month 5's resumable ingestion) and it is searchable."""
    rng, data, log = random.Random(SEED), tmp_path / "data", tmp_path / "server.log"
    acknowledged: list[tuple[str, str]] = []
    maybe: set[tuple[str, str]] = set()  # questions whose answer had not begun when the server died
    for round_ in range(3):
        with server(data, log) as target:
            assert [m for m in memory(target.http) if m not in maybe] == acknowledged
            if round_ == 0:
                upload = target.http.post("/v1/documents", files={"files": (
                    "lockers.txt", b"Lockers are on the second floor, next to the library.\n")})
                assert upload.status_code == 200 and upload.json()["chunks"] >= 1
            question = f"My locker number is {100 + round_}."
            answer = ask(target.http, question).json()["choices"][0]["message"]["content"]
            acknowledged += [("user", question), ("assistant", answer)]
            pieces = rng.randint(0, 8)
            story = STORY.format(round_)
            seen = stream_then_kill(target, story, pieces)
            assert target.process.returncode == -signal.SIGKILL
            (acknowledged.append if seen > 0 else maybe.add)(("user", story))
    with server(data, log) as target:  # a kill during an upload's ingestion
        files = [("files", (f"handbook_{i}.txt", handbook(i).encode())) for i in range(6)]
        uploading = threading.Thread(target=lambda: _ignore_errors(target.http.post, "/v1/documents", files=files))
        uploading.start()
        time.sleep(rng.uniform(0.3, 2.0))
        target.kill()
        uploading.join()
    with server(data, log) as target:
        listed = {d["name"]: d for d in target.http.get("/v1/documents").json()["data"]}
        assert {d["status"] for d in listed.values()} <= {"done", "partial"}
        print("after the kill during ingestion:", sorted((n, d["status"], d["chunks"]) for n, d in listed.items()))
        report = target.http.post("/v1/documents", files=files).json()  # month 5 resumes what was cut off
        assert not [f for f in report["files"] if f["error"]], report
        listed = {d["name"]: d for d in target.http.get("/v1/documents").json()["data"]}
        assert all(listed[f"handbook_{i}.txt"]["status"] == "done" for i in range(6))
        question = "What is the parking rule for building 5?"
        found = ask(target.http, question).json()
        assert "handbook_5.txt" in json.dumps(found["trace"]["citations"])
        acknowledged += [("user", question), ("assistant", found["choices"][0]["message"]["content"])]
    with server(data, log) as target:
        stored = memory(target.http)
        assert [m for m in stored if m not in maybe] == acknowledged
        assert not [m for m in stored if m[0] == "assistant" and "dragon" in m[1].lower()]  # no half answer
        names = sorted(d["name"] for d in target.http.get("/v1/documents").json()["data"])
        assert names == [f"handbook_{i}.txt" for i in range(6)] + ["lockers.txt"]
        answer = ask(target.http, "Where are the lockers?").json()
        assert "second floor" in answer["choices"][0]["message"]["content"]
    for name in ("assistant.sqlite", "keys.sqlite"):
        if (data / name).exists():
            with sqlite3.connect(data / name) as db:
                assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
