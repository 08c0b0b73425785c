"""Ingestion: idempotent (counted), changed and deleted files, and bad input that never loses the good."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from month5_rag.embeddings import HashingEmbedder
from month5_rag.rag import Rag, RagConfig


def make_rag(root: Path, store: str = "faiss", embedder=None, collection: str = "docs") -> Rag:
    return Rag(RagConfig(store=store, store_dir=str(root / "store"), collection=collection, progress=False),
               embedder=embedder or HashingEmbedder())


def stored_files(rag: Rag, collection: str = "docs") -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in rag.store.chunks(collection):
        counts[Path(c.metadata["file"]).name] = counts.get(Path(c.metadata["file"]).name, 0) + 1
    return counts


@pytest.mark.parametrize("store", ["chroma", "faiss"])
def test_reingest_computes_no_embedding_and_changes_replace(tmp_path, handwritten, minilm, store):
    docs = tmp_path / "docs"
    shutil.copytree(handwritten.folder, docs)
    rag = make_rag(tmp_path, store, minilm)
    first = rag.ingest([docs])
    total = rag.store.count("docs")
    assert first.embedded == total == first.chunks > 10
    before = minilm.embedded
    again = rag.ingest([docs])
    assert minilm.embedded == before and again.embedded == 0  # counted: not one embedding
    assert {f.status for f in again.files} == {"unchanged"} and rag.store.count("docs") == total

    runbook = docs / "incident_runbook.txt"
    runbook.write_text("On-call engineers are paid 300 pounds per week from next year.\n")
    (docs / "code_of_conduct.html").unlink()
    changed = rag.ingest([docs])
    status = {Path(f.path).name: f.status for f in changed.files}
    assert status["incident_runbook.txt"] == "replaced" and status["code_of_conduct.html"] == "removed"
    assert changed.embedded == 1  # only the changed file's one chunk
    counts = stored_files(rag)
    assert counts["incident_runbook.txt"] == 1 and "code_of_conduct.html" not in counts
    texts = [c.text for c in rag.store.chunks("docs") if c.metadata["name"] == "incident_runbook.txt"]
    assert texts == ["On-call engineers are paid 300 pounds per week from next year."]
    assert rag.search("on-call pay per week", "docs", 1)[0].name == "incident_runbook.txt"
    assert {f["path"] for f in rag.files()} == {str(p.resolve()) for p in docs.iterdir()}


def test_delete_and_reopen(tmp_path, handwritten):
    rag = make_rag(tmp_path)
    rag.ingest([handwritten.folder])
    benefits = stored_files(rag)["benefits_faq.html"]
    rag.delete("benefits_faq.html")
    assert "benefits_faq.html" not in stored_files(rag)
    reopened = make_rag(tmp_path)  # what a new process sees
    assert stored_files(reopened) == stored_files(rag)
    report = reopened.ingest([handwritten.folder])
    assert report.embedded == benefits and stored_files(reopened)["benefits_faq.html"] == benefits


def write_bad_folder(folder: Path) -> None:
    from docx import Document
    from fpdf import FPDF

    folder.mkdir(parents=True)
    (folder / "good.md").write_text("# Parking\n\nThe Tartu depot has 14 visitor parking spaces.\n")
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> broken \x00\xff" * 20)
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "Secret salary bands.")
    pdf.set_encryption(owner_password="owner", user_password="user")
    pdf.output(str(folder / "encrypted.pdf"))
    Document().save(str(folder / "empty.docx"))
    (folder / "zero.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 40)
    latin1 = "La cr\xe8me br\xfbl\xe9e co\xfbte 7 euros \xe0 la cantine.\n"
    (folder / "latin1.txt").write_bytes(latin1.encode("latin-1"))
    (folder / "notes.xyz").write_text("not a document type we read")


def test_bad_input_never_loses_the_good(tmp_path):
    folder = tmp_path / "mixed"
    write_bad_folder(folder)
    rag = make_rag(tmp_path)
    report = rag.ingest([folder])
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name["good.md"].status == "ingested" and by_name["good.md"].chunks == 1
    assert by_name["corrupt.pdf"].status == "error" and "not a readable PDF" in by_name["corrupt.pdf"].error
    assert by_name["encrypted.pdf"].status == "error" and "password" in by_name["encrypted.pdf"].error
    assert by_name["binary.txt"].status == "error" and "binary" in by_name["binary.txt"].error
    assert by_name["empty.docx"].warnings == ["DOCX has no text"] and by_name["empty.docx"].chunks == 0
    assert by_name["zero.txt"].warnings == ["empty file (0 bytes)"]
    latin = by_name["latin1.txt"]
    assert latin.chunks == 1 and "not UTF-8" in latin.warnings[0]
    assert by_name["notes.xyz"].status == "skipped"
    assert "crème brûlée" in next(c.text for c in rag.store.chunks("docs") if c.metadata["name"] == "latin1.txt")
    summary = report.summary()
    for name in ("corrupt.pdf", "encrypted.pdf", "binary.txt", "empty.docx", "zero.txt", "latin1.txt", "notes.xyz"):
        assert name in summary  # every problem is in the summary at the end
    assert sorted(stored_files(rag)) == ["good.md", "latin1.txt"]
    # errors are not remembered as done: a fixed file is picked up next time
    (folder / "binary.txt").write_text("Now it is text about the canteen.\n")
    assert {Path(f.path).name: f.status for f in rag.ingest([folder]).files}["binary.txt"] == "ingested"


def scanned_pdf(path: Path, sentence: str) -> Path:
    """A page that is only an image of text: no text layer, as a scanner makes it."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (1400, 200), 255)
    ImageDraw.Draw(image).text((30, 60), sentence, fill=0, font=ImageFont.load_default(size=44))
    pdf = FPDF()
    pdf.add_page()
    pdf.image(image, x=10, y=20, w=190)
    pdf.output(str(path))
    return path


def test_scanned_pdf_is_reported_without_ocr(tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    scanned_pdf(folder / "scan.pdf", "The archive room is on the second floor.")
    report = make_rag(tmp_path).ingest([folder], ocr="off")
    (f,) = report.files
    assert f.chunks == 0 and "no text on 1 page(s) (1)" in f.warnings[0] and "OCR is off" in f.warnings[0]


def test_scanned_pdf_is_read_by_ocr(tmp_path):
    from month5_rag.documents import ocr_available

    if not ocr_available():
        pytest.skip("tesseract-ocr is not installed (.ci/run installs it)")
    folder = tmp_path / "scans"
    folder.mkdir()
    scanned_pdf(folder / "scan.pdf", "The archive room is on the second floor.")
    rag = make_rag(tmp_path)
    (f,) = rag.ingest([folder]).files
    assert f.chunks == 1 and "read by OCR" in f.warnings[0]
    (chunk,) = rag.store.chunks("docs")
    assert "archive room is on the second floor" in chunk.text and chunk.metadata["page"] == 1


@pytest.mark.slow
def test_thousand_page_pdf_streams_in_bounded_memory(tmp_path):
    """Peak RSS of a fresh process ingesting 1,000 pages stays within 60 MiB of the same for 100 pages."""
    import json
    import subprocess
    import sys

    from month5_rag.corpus import write_long_pdf

    script = ("import json, sys; from pathlib import Path; from shared.memory import peak_rss_bytes; "
              "from month5_rag.embeddings import HashingEmbedder; from month5_rag.rag import Rag, RagConfig; "
              "rag = Rag(RagConfig(store='faiss', store_dir=sys.argv[2], progress=False), embedder=HashingEmbedder()); "
              "r = rag.ingest([sys.argv[1]]); "
              "print(json.dumps({'rss': peak_rss_bytes(), 'pages': r.files[0].pages, 'chunks': r.chunks}))")
    peaks = {}
    for pages in (100, 1000):
        pdf = write_long_pdf(tmp_path / f"long{pages}" / "long.pdf", pages)
        out = subprocess.run([sys.executable, "-c", script, str(pdf), str(tmp_path / f"store{pages}")],
                             capture_output=True, text=True, check=True, env={**__import__("os").environ,
                                                                               "OMP_NUM_THREADS": "1"})
        peaks[pages] = json.loads(out.stdout.strip().splitlines()[-1])
    assert peaks[1000]["pages"] == 1000 and peaks[1000]["chunks"] > 9 * peaks[100]["chunks"]
    assert peaks[1000]["rss"] - peaks[100]["rss"] < 60 * 2**20, peaks
