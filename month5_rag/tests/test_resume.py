"""An ingest killed half way (SIGKILL of a real subprocess) resumes without duplicates or lost chunks."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from month5_rag.corpus import write_long_pdf
from month5_rag.embeddings import HashingEmbedder
from month5_rag.rag import Rag, RagConfig

ROOT = Path(__file__).resolve().parents[2]


def stored(store_dir: Path) -> int:
    db = store_dir / "faiss" / "docs" / "chunks.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet, or locked for a moment
        return 0


@pytest.mark.slow
def test_killed_ingest_resumes_without_duplicates_or_losses(tmp_path):
    docs = tmp_path / "docs"
    write_long_pdf(docs / "a_long_manual.pdf", 400)
    write_long_pdf(docs / "b_other_manual.pdf", 60)
    store_dir = tmp_path / "store"
    command = [sys.executable, "-m", "month5_rag", "ingest", str(docs), "--store", "faiss", "--store-dir",
               str(store_dir), "--collection", "docs", "--embedding-model", "hashing", "--progress", "false"]
    proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while stored(store_dir) < 128 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the ingest finished before it could be killed: make the documents longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    at_kill = stored(store_dir)
    assert at_kill >= 128

    # the reference: the same folder ingested in one go
    clean = Rag(RagConfig(store="faiss", store_dir=str(tmp_path / "clean"), collection="docs", progress=False),
                embedder=HashingEmbedder())
    clean.ingest([docs])
    expected = {(c.metadata["name"], c.metadata["chunk"], c.text) for c in clean.store.chunks("docs")}
    assert at_kill < len(expected)

    embedder = HashingEmbedder()
    resumed = Rag(RagConfig(store="faiss", store_dir=str(store_dir), collection="docs", progress=False),
                  embedder=embedder)
    report = resumed.ingest([docs])
    assert report.embedded == embedder.embedded == len(expected) - at_kill  # only what was missing
    assert {Path(f.path).name: f.status for f in report.files}["a_long_manual.pdf"] == "resumed"
    got = [(c.metadata["name"], c.metadata["chunk"], c.text) for c in resumed.store.chunks("docs")]
    assert len(got) == len(set(got)) == resumed.store.count("docs")  # no duplicates
    assert set(got) == expected  # nothing lost
    hits = resumed.search("records team retention", "docs", 5, "dense")  # the index was rebuilt from SQLite
    assert len(hits) == 5
