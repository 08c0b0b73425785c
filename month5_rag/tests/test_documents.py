"""Reading each file type with its locator, and chunks that are exact spans of their source."""

from __future__ import annotations

from pathlib import Path

import pytest

from month5_rag.chunking import ChunkConfig, chunk_passages, split_sentences
from month5_rag.documents import DocumentError, document_text, pdf_page_text, read_passages
from month5_rag.embeddings import HashingEmbedder


def chunks_of(path: Path, cfg: ChunkConfig | None = None, count=None):
    cfg = cfg or ChunkConfig(48, 12)
    warnings: list[str] = []
    count = count or HashingEmbedder().count_tokens
    return list(chunk_passages(read_passages(path, warnings), count, cfg)), warnings


def test_pdf_pages_and_offsets(generated):
    path = generated.folder / "travel_expense_policy.pdf"
    chunks, warnings = chunks_of(path)
    assert not warnings and {c.page for c in chunks} == {1, 2, 3, 4, 5}
    for c in chunks:
        assert pdf_page_text(path, c.page)[c.start:c.end] == c.text  # a user can check every chunk
    for q in generated.questions:
        if q.file == path.name:  # each labelled fact is on its labelled page
            assert q.answer in " ".join(pdf_page_text(path, q.page).split())


@pytest.mark.parametrize("name", ["onboarding_guide.docx", "facilities_manual.docx"])
def test_docx_headings_paragraphs_and_offsets(generated, name):
    path = generated.folder / name
    text = document_text(path)
    chunks, _ = chunks_of(path)
    for c in chunks:
        assert c.page is None and c.heading.startswith("Aldermoor Systems")
        assert text[c.start:c.end] == c.text
    passages = list(read_passages(path, []))
    for q in generated.questions:
        if q.file == name:  # the labelled paragraph holds the fact, under the labelled heading
            p = passages[q.paragraph - 1]
            assert p.paragraph == q.paragraph and q.answer in p.text and p.heading == q.heading
    if name == "facilities_manual.docx":  # table rows are read too
        assert any("leeds-facilities@aldermoor.example" in p.text for p in passages)


@pytest.mark.parametrize("name", ["remote_work_policy.md", "code_of_conduct.html", "incident_runbook.txt",
                                  "data_retention_schedule.md", "benefits_faq.html"])
def test_markdown_html_text(handwritten, name):
    path = handwritten.folder / name
    text = document_text(path)
    chunks, warnings = chunks_of(path)
    assert chunks and not warnings
    for c in chunks:
        assert text[c.start:c.end] == c.text
    assert "Intranet home" not in text and "font-family" not in text  # nav and style are not content
    if name.endswith(".md"):
        assert all(c.heading for c in chunks) and "|---" not in text and "**" not in text


def test_chunks_respect_budget_and_overlap(handwritten, minilm):
    cfg = ChunkConfig(40, 16)
    chunks, _ = chunks_of(handwritten.folder / "remote_work_policy.md", cfg, minilm.count_tokens)
    runbook, _ = chunks_of(handwritten.folder / "incident_runbook.txt", cfg, minilm.count_tokens)
    assert len(chunks) > 5 and len(runbook) > 5
    for c in chunks:
        assert sum(minilm.count_tokens([c.text[s:e] for s, e in split_sentences(c.text)])) <= cfg.chunk_tokens
    assert any(b.start < a.end for a, b in zip(runbook, runbook[1:]))  # overlap within a section
    assert all(b.start >= a.end for a, b in zip(chunks, chunks[1:]) if a.heading != b.heading)  # none across


def test_sentences_keep_abbreviations_and_pdf_line_breaks():
    text = "Limits e.g. hotels apply. See p. 4 for trips.\nThis line\nwraps inside a sentence. Done!"
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "Limits e.g. hotels apply.", "See p. 4 for trips.", "This line\nwraps inside a sentence.", "Done!"]


def test_long_sentence_is_cut_at_words(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text(" ".join(f"word{i}" for i in range(500)) + ".")
    chunks, _ = chunks_of(path, ChunkConfig(64, 8))
    assert len(chunks) >= 8 and all(len(c.text.split()) <= 64 for c in chunks)
    assert " ".join(c.text for c in chunks).split() == path.read_text().split()


def test_unreadable_files_raise_document_error(tmp_path):
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 garbage")
    (tmp_path / "bin.txt").write_bytes(bytes(range(256)) * 10)
    (tmp_path / "bad.docx").write_bytes(b"PK\x03\x04 not a zip")
    for name in ("bad.pdf", "bin.txt", "bad.docx"):
        with pytest.raises(DocumentError):
            list(read_passages(tmp_path / name, []))
