"""The tool registry (server and client tools, validation, time limit, recorded runs) and the storage it uses."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest

from month2_llm_core.toolcalls import TOOLS, ToolSpec
from month3_mamba.facts import UNKNOWN
from month6_system.storage import SqlStorage
from month6_system.tools import Registry, Tool, client_tools, server_registry


@pytest.fixture
def storage(tmp_path):
    store = SqlStorage(tmp_path / "assistant.sqlite")
    yield store
    store.close()


def test_server_tools_use_month2_specs(storage):
    registry = server_registry(storage=storage)
    assert set(registry.tools) == {"calculator", "get_current_time", "recall_memory"}
    by_name = {t.name: t for t in TOOLS}
    assert all(registry.tools[name].spec == by_name[name] for name in registry.tools)


def test_calculator_and_time_tools_run_and_are_recorded():
    registry = server_registry()
    run = registry.execute("calculator", {"expression": "240 * 15 / 100"})
    assert run.ok and run.result["result"] == "36" and run.seconds >= 0
    bad = registry.execute("calculator", {"expression": "__import__('os')"})
    assert not bad.ok and "functions" in bad.result["error"]
    now = registry.execute("get_current_time", {"timezone": "Asia/Tokyo"})
    assert now.ok and now.result["time"].endswith("+09:00")
    assert not registry.execute("get_current_time", {"timezone": "Mars/Olympus"}).ok


def test_arguments_are_validated_against_the_schema():
    registry = server_registry()
    assert registry.validate({"name": "calculator", "arguments": {"expression": "1"}}) == []
    assert registry.validate({"name": "calculator", "arguments": {}})
    assert registry.validate({"name": "calculator", "arguments": {"expression": 3}})
    assert registry.validate({"name": "calculator", "arguments": {"expression": "1", "x": 1}})
    assert registry.validate({"name": "rm_rf", "arguments": {}}) == ["unknown tool 'rm_rf'"]
    run = registry.execute("calculator", {"expression": 3})
    assert not run.ok and "is not of type 'string'" in run.result["error"]


def test_a_slow_tool_times_out():
    registry = Registry(timeout_s=0.2)
    registry.add(Tool(ToolSpec("slow", "sleeps", {"type": "object", "properties": {}}),
                      lambda: time.sleep(2) or {"done": True}))
    start = time.perf_counter()
    run = registry.execute("slow", {})
    assert not run.ok and "timed out" in run.result["error"] and time.perf_counter() - start < 1.5


def test_client_tools_from_openai_json():
    weather = {"type": "function", "function": {"name": "get_weather", "description": "weather in a city",
                                                "parameters": {"type": "object", "properties": {
                                                    "city": {"type": "string"}}, "required": ["city"]}}}
    (tool,) = client_tools([weather])
    assert tool.client_side and tool.spec.name == "get_weather" and tool.spec.signature() == "get_weather(city: string)"
    registry = server_registry()
    registry.add(tool)
    assert registry.validate({"name": "get_weather", "arguments": {"city": "Oslo"}}) == []
    with pytest.raises(ValueError, match="client tool"):
        registry.execute("get_weather", {"city": "Oslo"})
    with pytest.raises(ValueError, match="defined twice"):  # a client cannot shadow a server tool
        registry.add(client_tools([{"type": "function", "function": {"name": "calculator"}}])[0])


@dataclass
class _Recalled:
    answer: str
    confidence: float
    known: bool = True


class _ScriptedMemory:
    """A memory whose confidence the test sets (unit test only; the real one is in test_agent's model test)."""

    def __init__(self, answer: str, confidence: float) -> None:
        self.answer, self.confidence = answer, confidence

    def recall(self, question: str) -> _Recalled:
        return _Recalled(self.answer, self.confidence, known=self.answer != UNKNOWN)


def test_recall_uses_memory_when_sure_and_stated_and_the_transcript_when_not(storage):
    first = storage.append_message("alice", "c1", "user", "my badge id is K7Q2X")
    storage.append_message("alice", "c1", "assistant", "Noted.")
    storage.append_message("alice", "c1", "user", "The 50%_off code is A_1%.")
    storage.append_message("bob", "c2", "user", "my badge id is ZZZ99")
    storage.append_message("bob", "c2", "user", "my locker id is K7Q2X")  # another key's: never seen

    def ask(answer: str, confidence: float, query: str) -> dict:
        registry = server_registry(memory=_ScriptedMemory(answer, confidence), storage=storage, key="alice")
        return registry.execute("recall_memory", {"query": query}).result

    assert ask("K7Q2X", 0.93, "what is my badge id?") == \
        {"path": "memory", "answer": "K7Q2X", "confidence": 0.93, "stated_in": first}
    assert ask("A_1%", 0.95, "the 50%_off code")["path"] == "memory"  # LIKE's wildcards taken as text
    # Sure of itself for a key never told (month 3's reader answers with a like key's value): not taken.
    unconfirmed = ask("K7Q2X", 0.99, "what is my locker id?")
    assert unconfirmed["path"] == "transcript" and unconfirmed["memory_unconfirmed"] == "K7Q2X"
    assert unconfirmed["answer"] == []  # and the search finds nothing said about a locker
    unsure = ask("1234", 0.1, "what is my badge id?")
    assert unsure["path"] == "transcript" and unsure["answer"] == ["my badge id is K7Q2X"]
    assert "memory_unconfirmed" not in unsure and unsure["memory_confidence"] == 0.1
    # The reader says it was never told, sure of it (even where a message states "unknown"): the transcript answers.
    storage.append_message("alice", "c1", "user", "my locker id is unknown")
    not_told = ask(UNKNOWN, 0.98, "what is my locker id?")
    assert not_told["path"] == "transcript" and not_told["memory_not_told"] and "memory_unconfirmed" not in not_told
    assert not_told["answer"] == ["my locker id is unknown"]


def test_storage_round_trip_and_key_isolation(tmp_path):
    path = tmp_path / "db.sqlite"
    store = SqlStorage(path)
    store.append_message("alice", "c1", "user", "hello")
    store.append_message("alice", "c2", "user", "my locker number is 12")
    store.append_message("bob", "c1", "user", "bob's secret")
    store.put_trace("t1", "alice", {"expert": {"name": "math", "probability": 0.9}})
    store.close()
    store = SqlStorage(path)  # durable: a new connection sees everything
    assert [m.content for m in store.messages("alice")] == ["hello", "my locker number is 12"]
    assert [m.content for m in store.messages("alice", "c1")] == ["hello"]
    assert [m.content for m in store.messages("bob")] == ["bob's secret"]
    assert store.search_messages("alice", "secret") == []
    assert store.get_trace("t1") == {"expert": {"name": "math", "probability": 0.9}}
    assert store.get_trace("t1", key="bob") is None
    assert store.forget("alice") == 2 and store.messages("alice") == [] and store.get_trace("t1") is None
    assert len(store.messages("bob")) == 1
    json.dumps([m.__dict__ for m in store.messages("bob")])  # plain data
    store.close()


def test_search_documents_cites_its_evidence(tmp_path):
    from month5_rag.rag import Rag, RagConfig

    doc = tmp_path / "travel_policy.txt"
    doc.write_text("Travel policy.\n\nThe hotel limit in Zurich is 250 francs per night. "
                   "Meals are reimbursed up to 60 francs a day.\n")
    rag = Rag(RagConfig(store="faiss", store_dir=str(tmp_path / "store"), collection="docs",
                        embedding_model="hashing", progress=False))
    rag.ingest([doc], "docs")
    registry = server_registry(rag=rag, collection="docs")
    run = registry.execute("search_documents", {"query": "hotel limit in Zurich per night", "top_k": 3})
    assert run.ok, run.result
    assert run.result["hits"] and all("travel_policy.txt" in h["locator"] for h in run.result["hits"])
    if run.result["found"]:
        assert run.result["citations"] and run.result["citations"][0] in run.result["text"]
        assert any("250 francs" in e["sentence"] for e in run.result["evidence"])
