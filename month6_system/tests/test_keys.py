"""API keys: the store (hashed, revocable, rotatable), the `keys` admin command, and the live server's
Bearer auth with per-key scopes, called with the official openai SDK and httpx. The scripted assistant
has month 5's real document store and the SQLite transcript (the no-model hashing embedder), so
documents, memory and traces are scoped for real; the agent's own routes are in test_isolation.py."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from month6_system.keys import PREFIX, KeyStore
from month6_system.tests.conftest import ScriptedAssistant, ScriptedWithRecords
from shared.errors import UserError

openai = pytest.importorskip("openai")
ROOT = Path(__file__).resolve().parents[2]
DATA = Path(tempfile.mkdtemp(prefix="month6-keys-"))
server_settings = {"data_dir": DATA}


def server_assistant() -> ScriptedWithRecords:
    return ScriptedWithRecords(DATA)


# -- the store --------------------------------------------------------------------------------------
def test_a_key_is_stored_only_as_its_hash_and_maps_to_its_scope(tmp_path):
    store = KeyStore(tmp_path)
    assert store.list() == [] and not store.any_live() and not store.path.exists()  # nothing written until asked
    key = store.create("team-a")
    assert key.startswith(PREFIX) and len(key) > 40 and store.scope(key) == "team-a" and store.any_live()
    store.close()
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert key.encode() not in on_disk and key[len(PREFIX) + 4:].encode() not in on_disk
    assert KeyStore(tmp_path).scope(key) == "team-a"  # survives a restart
    assert store.scope(key[:-1]) is None and store.scope("") is None and store.scope("team-a") is None


def test_revoke_then_create_rotates_the_key_of_a_scope(tmp_path):
    store = KeyStore(tmp_path)
    old = store.create("team-a")
    with pytest.raises(UserError, match="exists already"):
        store.create("team-a")
    store.revoke("team-a")
    assert store.scope(old) is None and not store.any_live()
    assert store.list()[0].revoked is not None
    new = store.create("team-a")
    assert store.scope(new) == "team-a" and store.scope(old) is None and store.list()[0].revoked is None
    with pytest.raises(UserError, match="no live key"):
        store.revoke("team-b")


@pytest.mark.parametrize("name", ["ab", "Team-A", "team a", "-team", "team-", "../etc", "x" * 64, "default"])
def test_a_bad_key_name_is_refused(tmp_path, name):
    with pytest.raises(UserError):
        KeyStore(tmp_path).create(name)


def test_the_keys_command(tmp_path):
    def keys(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "month6_system", "keys", *args, "--data-dir", str(tmp_path)],
                              capture_output=True, text=True, cwd=ROOT, timeout=120)

    created = keys("create", "team-a")
    assert created.returncode == 0, created.stderr
    key = created.stdout.splitlines()[0]
    assert KeyStore(tmp_path).scope(key) == "team-a"
    listed = keys("list")
    assert "team-a" in listed.stdout and "live" in listed.stdout and key not in listed.stdout
    assert keys("revoke", "team-a").returncode == 0 and KeyStore(tmp_path).scope(key) is None
    again = keys("revoke", "team-a")
    assert again.returncode == 2 and "no live key" in again.stderr and "Traceback" not in again.stderr
    assert keys("create").returncode == 2


# -- the live server --------------------------------------------------------------------------------
def client(live_server, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=live_server.base_url, api_key=key, max_retries=0, timeout=60)


def ask(c: openai.OpenAI, text: str):
    return c.chat.completions.create(model="hybrid-assistant", messages=[{"role": "user", "content": text}])


def test_without_keys_the_server_is_open_in_the_default_scope(live_server):
    assert ask(client(live_server, "anything"), "hello").choices[0].message.content == "You said: hello"
    assert live_server.assistant.turns[-1].key == "default"


@pytest.fixture(scope="module")
def keys(live_server) -> dict[str, str]:
    """Two live keys, created once a module's open-server test has run (auto mode: from now on keys are needed)."""
    store = live_server.app.state.hybrid.keys
    return {"a": store.create("team-a"), "b": store.create("team-b")}


@pytest.mark.conformance("API keys: every /v1 route 401 without a live Bearer key")
def test_once_a_key_exists_every_v1_route_needs_one(live_server, keys):
    with pytest.raises(openai.AuthenticationError) as err:
        ask(client(live_server, "sk-hyb-wrong"), "hello")
    assert err.value.status_code == 401 and err.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client(live_server, "sk-hyb-wrong").models.list()
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        for method, path in [("GET", "/v1/models"), ("GET", "/v1/documents"), ("POST", "/v1/documents"),
                             ("DELETE", "/v1/documents/x.txt"), ("GET", "/v1/memory"),
                             ("DELETE", "/v1/memory"), ("GET", "/v1/traces/trace-x"), ("POST", "/v1/embeddings"),
                             ("POST", "/v1/chat/completions")]:
            response = http.request(method, path, json={})
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["error"]["code"] == "missing_api_key"
            assert response.headers["www-authenticate"] == "Bearer"
        basic = http.get("/v1/models", headers={"Authorization": "Basic dXNlcjpwYXNz"})
        assert basic.status_code == 401
        assert http.get("/healthz").status_code == 200  # probes stay open
    assert ask(client(live_server, keys["a"]), "hello").choices[0].message.content == "You said: hello"
    assert live_server.assistant.turns[-1].key == "team-a"


@pytest.mark.conformance("API keys: traces, documents and memory scoped per key")
def test_each_key_sees_only_its_own_traces_documents_and_memory(live_server, keys, tmp_path):
    b = client(live_server, keys["b"])
    trace_b = ask(b, "the secret plan").to_dict()["trace_id"]
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        def as_(who: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {keys[who]}"}

        assert http.get(f"/v1/traces/{trace_b}", headers=as_("b")).status_code == 200
        assert http.get(f"/v1/traces/{trace_b}", headers=as_("a")).status_code == 404
        note = tmp_path / "b_secrets.txt"
        note.write_text("The vault code of Project Nightjar is 7391-QX.\n")
        uploaded = http.post("/v1/documents", headers=as_("b"),
                             files=[("files", (note.name, note.read_bytes(), "text/plain"))]).json()
        assert uploaded["files"][0]["status"] == "ingested"
        assert [d["name"] for d in http.get("/v1/documents", headers=as_("b")).json()["data"]] == [note.name]
        assert http.get("/v1/documents", headers=as_("a")).json()["data"] == []
        assert http.delete(f"/v1/documents/{note.name}", headers=as_("a")).status_code == 404
        assert [d["name"] for d in http.get("/v1/documents", headers=as_("b")).json()["data"]] == [note.name]
        live_server.assistant.storage.append_message("team-b", "c1", "user", "my badge id is K7Q2X")
        assert http.get("/v1/memory", headers=as_("a")).json()["data"] == []
        assert http.delete("/v1/memory", headers=as_("a")).json()["deleted"] == 0
        memory_b = http.get("/v1/memory", headers=as_("b")).json()["data"]
        assert [m["content"] for m in memory_b] == ["my badge id is K7Q2X"]
    assert (DATA / "uploads" / "team-b" / note.name).exists() and not (DATA / "uploads" / "team-a").exists()


def test_a_revoked_key_gets_401_at_once(live_server, keys):
    store = live_server.app.state.hybrid.keys
    spare = store.create("team-spare")
    assert ask(client(live_server, spare), "hi").choices[0].message.content == "You said: hi"
    store.revoke("team-spare")
    with pytest.raises(openai.AuthenticationError):
        ask(client(live_server, spare), "hi")


def test_required_and_off_modes(tmp_path):
    from fastapi.testclient import TestClient

    from month6_system.app import create_app
    from month6_system.settings import Settings

    with TestClient(create_app(Settings(data_dir=tmp_path, api_keys="required"), ScriptedAssistant())) as http:
        assert http.get("/v1/models").status_code == 401  # no key exists, and none is valid
    KeyStore(tmp_path).create("team-a")
    bot = ScriptedAssistant()
    with TestClient(create_app(Settings(data_dir=tmp_path, api_keys="off"), bot)) as http:
        body = {"model": "hybrid-assistant", "messages": [{"role": "user", "content": "hi"}]}
        assert http.post("/v1/chat/completions", json=body).status_code == 200 and bot.turns[-1].key == "default"
