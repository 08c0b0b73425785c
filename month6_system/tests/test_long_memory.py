"""KeyedMemory: month 3's reader state per key in the storage, so replicas share one memory per key. A tiny
untrained sentences reader (the states are what is tested, not its answers); the trained reader's answers are
tested in month 3 and through the assistant (test_hybrid_sdk.py)."""

from __future__ import annotations

import torch

from month3_mamba.memory import LongMemory
from month3_mamba.model import MambaConfig, MambaLM
from month3_mamba.recall import RecallTaskConfig
from month6_system.long_memory import KeyedMemory
from month6_system.storage import SqlStorage
from month6_system.tools import recall_memory_tool


def reader() -> LongMemory:
    torch.manual_seed(0)
    model = MambaLM(MambaConfig(d_model=16, n_layer=1, d_state=4))
    return LongMemory(model, RecallTaskConfig(format="sentences", questions="independent", seq_len=80))


def alone(texts: list[str], question: str):
    """The recall of one LongMemory that read `texts` (each as KeyedMemory writes it)."""
    memory = reader()
    for text in texts:
        memory.write(text.strip() + " ")
    return memory.recall(question)


def test_each_key_keeps_its_own_state_in_the_storage_shared_by_replicas(tmp_path):
    storage = SqlStorage(tmp_path / "assistant.sqlite")
    a, b = KeyedMemory(reader(), storage), KeyedMemory(reader(), storage)  # two replicas, one database
    a.write("team-a", "My badge number is K7Q2X.")
    b.write("team-b", "Our door code is 4417.")
    b.write("team-a", "The project code is BLUE-7.")  # the other replica extends team-a's state
    question = "what is my badge number?"
    expected = alone(["My badge number is K7Q2X.", "The project code is BLUE-7."], question)
    assert a.recall("team-a", question) == b.recall("team-a", question) == expected
    assert a.recall("team-b", question) == alone(["Our door code is 4417."], question)  # never team-a's state
    saved = storage.get_memory_state("team-a")
    assert 0 < len(saved) < 20_000  # constant size: the state, not the text
    a.write("team-a", "x " * 5000)
    assert abs(len(storage.get_memory_state("team-a")) - len(saved)) < 200


def test_forgetting_a_key_resets_its_memory_everywhere(tmp_path):
    storage = SqlStorage(tmp_path / "assistant.sqlite")
    a, b = KeyedMemory(reader(), storage), KeyedMemory(reader(), storage)
    a.write("team-a", "My badge number is K7Q2X.")
    storage.forget("team-a")
    assert b.recall("team-a", "my badge number") == alone([], "my badge number")


def test_the_tool_with_month_3s_reader_says_which_path_answered(tmp_path):
    storage = SqlStorage(tmp_path / "assistant.sqlite")
    memory = KeyedMemory(reader(), storage)
    storage.append_message("team-a", "c1", "user", "My badge number is K7Q2X.")
    memory.write("team-a", "My badge number is K7Q2X.")
    confidence = memory.recall("team-a", "my badge number").confidence
    doubting = recall_memory_tool(memory.for_key("team-a"), storage, "team-a", threshold=min(1.0, confidence * 2))
    fallback = doubting("my badge number")
    assert fallback["path"] == "transcript" and fallback["answer"] == ["My badge number is K7Q2X."]
    assert fallback["memory_confidence"] == round(confidence, 4)
