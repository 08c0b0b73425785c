"""/v1/documents and /v1/memory on the live server (month 5's real ingestion with the no-model hashing embedder,
and the SQLite transcript, behind a scripted assistant); month 2's terminal chat as this server's client."""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
import pytest

from month6_system.company_docs import write_company_docs
from month6_system.tests.conftest import ScriptedWithRecords

DATA = Path(tempfile.mkdtemp(prefix="month6-records-"))
server_settings = {"data_dir": DATA}


def server_assistant() -> ScriptedWithRecords:
    return ScriptedWithRecords(DATA)


@pytest.fixture(scope="module")
def http(live_server):
    with httpx.Client(base_url=live_server.url, timeout=60) as client:
        yield client


def test_upload_list_and_delete_documents(http, tmp_path):
    pdf, docx = write_company_docs(tmp_path)
    files = [("files", (pdf.name, pdf.read_bytes(), "application/pdf")),
             ("files", (docx.name, docx.read_bytes(), "application/octet-stream")),
             ("files", ("broken.pdf", b"%PDF-1.4 not really", "application/pdf"))]
    report = http.post("/v1/documents", files=files).json()
    by_name = {Path(f["path"]).name: f for f in report["files"]}
    assert by_name["travel_policy.pdf"]["status"] == "ingested" and by_name["travel_policy.pdf"]["pages"] == 2
    assert by_name["it_handbook.docx"]["chunks"] >= 1 and by_name["broken.pdf"]["status"] == "error"
    listed = http.get("/v1/documents").json()["data"]
    assert {d["name"] for d in listed} >= {"travel_policy.pdf", "it_handbook.docx"}
    assert http.delete("/v1/documents/it_handbook.docx").json()["deleted"] is True
    assert "it_handbook.docx" not in {d["name"] for d in http.get("/v1/documents").json()["data"]}
    missing = http.delete("/v1/documents/it_handbook.docx")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "document_not_found"


def test_an_upload_without_a_plain_name_is_400(http):
    response = http.post("/v1/documents", files=[("files", (".env", b"SECRET=1", "text/plain"))])
    assert response.status_code == 400 and response.json()["error"]["param"] == "files"


def test_memory_lists_and_forgets_the_transcript(http, live_server):
    storage = live_server.assistant.storage
    storage.append_message("default", "c1", "user", "My badge number is K7Q2X.")
    storage.append_message("other-key", "c1", "user", "not yours")
    data = http.get("/v1/memory").json()["data"]
    assert [m["content"] for m in data] == ["My badge number is K7Q2X."]
    assert http.delete("/v1/memory").json()["deleted"] == 1
    assert http.get("/v1/memory").json()["data"] == []
    assert [m.content for m in storage.messages("other-key")] == ["not yours"]  # another key's rows stay


def test_month2_terminal_chat_talks_to_this_server(live_server):
    """`python -m month2_llm_core chat --backend openai --base-url URL/v1` is this server's terminal chat."""
    from month2_llm_core.chat import ChatSession, OpenAIBackend, Sampling

    session = ChatSession(OpenAIBackend(live_server.base_url), sampling=Sampling(max_new_tokens=32))
    assert "".join(session.reply("hello there")) == "You said: hello there"
    assert session.messages[-1] == {"role": "assistant", "content": "You said: hello there"}
