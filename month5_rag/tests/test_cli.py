"""The commands end to end (ingest, list, ask, chat, delete; eval in test_answers.py), and a user's
mistakes as one line with exit status 2."""

from __future__ import annotations

import io
import json

import pytest

from month5_rag.__main__ import main


def run(capsys, *argv: str) -> str:
    main(list(argv))
    return capsys.readouterr().out


def fails(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as stop:
        main(list(argv))
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"python -m month5_rag {argv[0]}: error: "), err
    return lines[0]


def test_commands_end_to_end(tmp_path, capsys, handwritten):
    store = ["--store", "faiss", "--store-dir", str(tmp_path / "store"), "--collection", "team-a",
             "--embedding-model", "hashing", "--progress", "false"]
    out = run(capsys, "ingest", str(handwritten.folder), *store, "--json", str(tmp_path / "report.json"))
    assert "5 file(s) (5 ingested)" in out
    assert json.loads((tmp_path / "report.json").read_text())["chunks"] > 10
    assert "team-a: 5 file(s)" in run(capsys, "list", *store)
    listing = run(capsys, "list", *store, "--files", "true")
    assert "incident_runbook.txt" in listing and "done" in listing
    # the hashing embedder's similarities are low: the threshold calibrated for MiniLM does not fit it
    loose = ["--generate", "false", "--threshold", "0.05"]
    question = "How long are invoices and credit notes kept?"
    out = run(capsys, "ask", question, *store, *loose, "--mode", "bm25")
    assert "7 years" in out and "[data_retention_schedule.md" in out and '> "' in out
    answer = json.loads(run(capsys, "ask", question, *store, *loose, "--json", "true"))
    assert answer["found"] and answer["citations"] and answer["evidence"][0]["sentence"]
    out = run(capsys, "ask", "How far away is the Moon Base from Rotterdam?", *store, *loose)
    assert out.startswith("Not found in the documents.") and "Moon Base, Rotterdam" in out
    assert "chunks removed" in run(capsys, "delete", "benefits_faq.html", *store)
    assert "benefits_faq.html" not in run(capsys, "list", *store, "--files", "true")


def test_chat_keeps_history_and_streams(tmp_path, handwritten):
    from month5_rag.chat import RagChat, run_chat
    from month5_rag.embeddings import HashingEmbedder
    from month5_rag.rag import AnswerConfig, Rag, RagConfig

    from .test_frameworks import ScriptedBackend

    rag = Rag(RagConfig(store="faiss", store_dir=str(tmp_path), collection="hw", progress=False),
              embedder=HashingEmbedder())
    rag.ingest([handwritten.folder])
    backend = ScriptedBackend()
    rag._backend = backend
    chat = RagChat(rag.answerer(AnswerConfig(generate=True, mode="bm25", threshold=0.05)), "hw")
    out = io.StringIO()
    questions = "How long are invoices and credit notes kept?\nAnd CCTV footage from depots?\n/quit\n"
    run_chat(chat, io.StringIO(questions), out)
    text = out.getvalue()
    assert text.count("bot> The answer is in the context.") == 2 and "[data_retention_schedule.md" in text
    assert len(chat.history) == 4 and chat.history[0]["content"] == "How long are invoices and credit notes kept?"
    assert "7 years" in backend.prompts[0] and "31 days" in backend.prompts[1]


@pytest.mark.parametrize("argv, says", [
    (["ingest", "/no/such/folder"], "no such file or folder"),
    (["ingest", ".", "--collection", "a/b"], "collection name"),
    (["ingest", ".", "--chunk-tokens", "8"], "chunk-tokens must be at least 16"),
    (["ingest", ".", "--overlap-tokens", "500"], "overlap-tokens"),
    (["ask", "hello?", "--collection", "nope"], "no collection 'nope'"),
    (["ask", "hello?", "--threshold", "3"], "cosine similarity"),
    (["chat", "--k", "0"], "at least 1"),
    (["list", "--files", "true", "--collection", "nope"], "no collection"),
    (["delete", "x.pdf", "--collection", "nope"], "no collection"),
    (["eval", "--limit", "-1"], "--limit must be >= 0"),
    (["ingest", ".", "--store", "chroma-http", "--port", "1"], "no Chroma server"),
])
def test_user_errors(tmp_path, capsys, argv, says):
    line = fails(capsys, *argv, *([] if argv[0] == "eval" else ["--store-dir", str(tmp_path)]))
    assert says in line


def test_embedding_model_of_a_collection_is_kept(tmp_path, capsys, handwritten):
    store = ["--store", "faiss", "--store-dir", str(tmp_path), "--progress", "false"]
    run(capsys, "ingest", str(handwritten.folder / "incident_runbook.txt"), *store, "--embedding-model", "hashing")
    assert "built with the embedding model 'hashing'" in fails(
        capsys, "ingest", str(handwritten.folder), *store, "--embedding-model", "all-MiniLM-L6-v2")
