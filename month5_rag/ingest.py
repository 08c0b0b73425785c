"""Ingest a folder (or files) into a collection: read, chunk, embed, store. Idempotent and resumable.

    python -m month5_rag ingest docs/ --collection team-a
    python -m month5_rag ingest docs/ --store faiss --faiss-index hnsw

A manifest (SQLite, next to the store) records each file's content hash and whether its chunks are
all stored. Chunk ids are derived from (collection, file, content hash, chunk number), so:
- an unchanged file is skipped without computing a single embedding;
- a changed file's old chunks are deleted before its new ones are added;
- a file that is gone from an ingested folder has its chunks deleted;
- an ingest killed half way resumes: the chunks already stored are found by id and not embedded
  again, the rest are added; nothing is duplicated or lost.
A file that cannot be read (corrupt, encrypted, binary, unsupported) is reported and the rest of the
folder is ingested; the summary at the end lists every error and warning.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from month5_rag.chunking import Chunk, ChunkConfig, chunk_passages
from month5_rag.documents import DocumentError, file_kind, pdf_page_count, read_passages
from month5_rag.stores import VectorStore, check_collection_name
from shared.errors import UserError

BATCH = 64  # chunks per embed-and-store step: a kill loses at most this much work


@dataclass
class FileReport:
    path: str
    status: str  # ingested | unchanged | resumed | replaced | removed | error | skipped
    chunks: int = 0  # chunks the file has in the store now
    embedded: int = 0  # embeddings computed for it in this run
    pages: int | None = None
    warnings: list[str] = field(default_factory=list)
    error: str = ""


@dataclass
class IngestReport:
    collection: str
    files: list[FileReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def embedded(self) -> int:
        return sum(f.embedded for f in self.files)

    @property
    def chunks(self) -> int:
        return sum(f.chunks for f in self.files if f.status not in ("removed", "error", "skipped"))

    def as_dict(self) -> dict:
        return {"collection": self.collection, "seconds": round(self.seconds, 2), "embedded": self.embedded,
                "chunks": self.chunks, "files": [asdict(f) for f in self.files]}

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for f in self.files:
            counts[f.status] = counts.get(f.status, 0) + 1
        lines = [f"collection {self.collection}: {len(self.files)} file(s) "
                 f"({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))}), {self.chunks} chunks, "
                 f"{self.embedded} embedded, {self.seconds:.1f} s"]
        for f in self.files:
            if f.error:
                lines.append(f"  ERROR   {f.path}: {f.error}")
            for w in f.warnings:
                lines.append(f"  WARNING {f.path}: {w}")
        return "\n".join(lines)


class Manifest:
    """What is stored, per collection and file: content fingerprint, status, chunk count."""

    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # one connection, usable from the thread that serves a request (month 6 serialises its use)
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS files (collection TEXT NOT NULL, path TEXT NOT NULL, fingerprint TEXT NOT NULL,
                status TEXT NOT NULL, chunks INTEGER NOT NULL DEFAULT 0, kind TEXT, pages INTEGER,
                warnings TEXT NOT NULL DEFAULT '[]', updated REAL NOT NULL, PRIMARY KEY (collection, path));
            CREATE TABLE IF NOT EXISTS collections (name TEXT PRIMARY KEY, model TEXT NOT NULL, dim INTEGER NOT NULL);
        """)
        self.db.commit()

    def get(self, collection: str, path: str) -> dict | None:
        row = self.db.execute("SELECT fingerprint, status, chunks, kind, pages, warnings FROM files "
                              "WHERE collection = ? AND path = ?", (collection, path)).fetchone()
        if row is None:
            return None
        return dict(zip(("fingerprint", "status", "chunks", "kind", "pages", "warnings"), row))

    def files(self, collection: str) -> list[dict]:
        rows = self.db.execute("SELECT path, status, chunks, kind, pages, warnings, updated FROM files "
                               "WHERE collection = ? ORDER BY path", (collection,))
        keys = ("path", "status", "chunks", "kind", "pages", "warnings", "updated")
        return [{**dict(zip(keys, r)), "warnings": json.loads(r[5])} for r in rows]

    def start(self, collection: str, path: str, fingerprint: str, kind: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO files (collection, path, fingerprint, status, kind, updated) "
                        "VALUES (?, ?, ?, 'partial', ?, ?)", (collection, path, fingerprint, kind, time.time()))
        self.db.commit()

    def done(self, collection: str, path: str, chunks: int, pages: int | None, warnings: list[str]) -> None:
        self.db.execute("UPDATE files SET status = 'done', chunks = ?, pages = ?, warnings = ?, updated = ? "
                        "WHERE collection = ? AND path = ?",
                        (chunks, pages, json.dumps(warnings), time.time(), collection, path))
        self.db.commit()

    def remove(self, collection: str, path: str) -> None:
        self.db.execute("DELETE FROM files WHERE collection = ? AND path = ?", (collection, path))
        self.db.commit()

    def collection_model(self, collection: str) -> tuple[str, int] | None:
        row = self.db.execute("SELECT model, dim FROM collections WHERE name = ?", (collection,)).fetchone()
        return (row[0], row[1]) if row else None

    def set_collection_model(self, collection: str, model: str, dim: int) -> None:
        self.db.execute("INSERT OR IGNORE INTO collections VALUES (?, ?, ?)", (collection, model, dim))
        self.db.commit()

    def collections(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM collections ORDER BY name")]

    def drop(self, collection: str) -> None:
        self.db.execute("DELETE FROM files WHERE collection = ?", (collection,))
        self.db.execute("DELETE FROM collections WHERE name = ?", (collection,))
        self.db.commit()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def chunk_id(collection: str, path: str, fingerprint: str, index: int) -> str:
    return hashlib.sha1(f"{collection}\0{path}\0{fingerprint}\0{index}".encode()).hexdigest()[:32]


def embed_text(chunk: Chunk, path: Path) -> str:
    """What is embedded and indexed for BM25: the chunk with the document title and heading in front,
    so a question naming the document or section finds it (the stored text stays the exact span)."""
    title = path.stem.replace("_", " ").replace("-", " ")
    context = f"{title} > {chunk.heading}" if chunk.heading else title
    return f"{context}: {chunk.text}"


def chunk_metadata(chunk: Chunk, path: Path, kind: str, fingerprint: str, embedded_text: str) -> dict:
    return {"file": str(path), "name": path.name, "kind": kind, "page": chunk.page, "heading": chunk.heading,
            "paragraph": chunk.paragraph, "paragraph_end": chunk.paragraph_end, "start": chunk.start,
            "end": chunk.end, "chunk": chunk.index, "fingerprint": fingerprint, "indexed": embedded_text}


def discover(paths: Iterable[str | Path]) -> tuple[list[Path], list[Path]]:
    """(files to ingest, folders they came from). Hidden files are left out; others of an
    unsupported type are kept so the report names them."""
    files, folders = [], []
    for given in paths:
        p = Path(given).expanduser()
        if not p.exists():
            raise UserError(f"{given}: no such file or folder")
        p = p.resolve()
        if p.is_dir():
            folders.append(p)
            files += sorted(f for f in p.rglob("*") if f.is_file()
                            and not any(part.startswith(".") for part in f.relative_to(p).parts))
        else:
            files.append(p)
    return list(dict.fromkeys(files)), folders


def _batches(chunks: Iterator[Chunk], size: int) -> Iterator[list[Chunk]]:
    batch: list[Chunk] = []
    for chunk in chunks:
        batch.append(chunk)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def ingest_file(path: Path, collection: str, store: VectorStore, embedder, manifest: Manifest,
                cfg: ChunkConfig, ocr: str = "auto", chunk_bar: tqdm | None = None) -> FileReport:
    key = str(path)
    kind = file_kind(path)
    if kind is None:
        return FileReport(key, "skipped", warnings=[f"unsupported file type {path.suffix or '(none)'}"])
    fingerprint = hashlib.sha256(
        f"{file_sha256(path)}|{embedder.name}|{cfg.chunk_tokens}|{cfg.overlap_tokens}".encode()).hexdigest()[:32]
    previous = manifest.get(collection, key)
    if previous and previous["fingerprint"] == fingerprint and previous["status"] == "done":
        return FileReport(key, "unchanged", previous["chunks"], 0, previous["pages"], json.loads(previous["warnings"]))
    status = "ingested"
    if previous and previous["fingerprint"] != fingerprint:
        store.delete_file(collection, key)
        status = "replaced"
    elif previous:
        status = "resumed"
    manifest.start(collection, key, fingerprint, kind)
    report = FileReport(key, status)
    try:
        report.pages = pdf_page_count(path) if kind == "pdf" else None
        passages = read_passages(path, report.warnings, ocr)
        for batch in _batches(chunk_passages(passages, embedder.count_tokens, cfg), BATCH):
            ids = [chunk_id(collection, key, fingerprint, c.index) for c in batch]
            have = store.existing(collection, ids)
            todo = [(i, c) for i, c in zip(ids, batch) if i not in have]
            if todo:
                texts = [embed_text(c, path) for _, c in todo]
                vectors = embedder.embed_passages(texts)
                store.add(collection, [i for i, _ in todo], vectors, [c.text for _, c in todo],
                          [chunk_metadata(c, path, kind, fingerprint, t) for (_, c), t in zip(todo, texts)])
                report.embedded += len(todo)
            report.chunks += len(batch)
            if chunk_bar is not None:
                chunk_bar.update(len(batch))
    except DocumentError as err:
        store.delete_file(collection, key)
        manifest.remove(collection, key)
        return FileReport(key, "error", 0, report.embedded, report.pages, report.warnings, str(err))
    store.flush()
    if report.chunks == 0 and not report.warnings:
        report.warnings.append("no text")
    manifest.done(collection, key, report.chunks, report.pages, report.warnings)
    return report


def remove_file(path: str, collection: str, store: VectorStore, manifest: Manifest) -> FileReport:
    store.delete_file(collection, path)
    store.flush()
    manifest.remove(collection, path)
    return FileReport(path, "removed")


def ingest_paths(paths: Iterable[str | Path], collection: str, store: VectorStore, embedder, manifest: Manifest,
                 cfg: ChunkConfig | None = None, ocr: str = "auto", progress: bool = True) -> IngestReport:
    """Ingest files and folders; chunks of files gone from an ingested folder are deleted."""
    cfg = cfg or ChunkConfig()
    check_collection_name(collection)
    recorded = manifest.collection_model(collection)
    if recorded and recorded[0] != embedder.name:
        raise UserError(f"collection {collection!r} was built with the embedding model {recorded[0]!r}; use "
                        f"--embedding-model {recorded[0]} or another collection")
    manifest.set_collection_model(collection, embedder.name, embedder.dim)
    start = time.perf_counter()
    files, folders = discover(paths)
    report = IngestReport(collection)
    present = {str(f) for f in files}
    for row in manifest.files(collection):
        if row["path"] not in present and any(Path(row["path"]).is_relative_to(d) for d in folders) \
                and not Path(row["path"]).exists():
            report.files.append(remove_file(row["path"], collection, store, manifest))
    with tqdm(files, desc="files", unit="file", disable=not progress) as file_bar, \
            tqdm(desc="chunks", unit="chunk", disable=not progress, position=1, leave=False) as chunk_bar:
        for path in file_bar:
            file_bar.set_postfix_str(path.name[:40])
            try:
                report.files.append(ingest_file(path, collection, store, embedder, manifest, cfg, ocr, chunk_bar))
            except (OSError, UnicodeError) as err:  # unreadable file, permissions: this file only
                report.files.append(FileReport(str(path), "error", error=f"{type(err).__name__}: {err}"))
    report.seconds = time.perf_counter() - start
    return report


# -- CLI -------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    from month5_rag.rag import RagConfig
    from shared.config import add_config_arguments

    parser.add_argument("paths", nargs="+", help="files and folders to ingest")
    add_config_arguments(parser, RagConfig)
    add_config_arguments(parser, ChunkConfig)
    parser.add_argument("--ocr", default="auto", choices=["auto", "off", "force"],
                        help="scanned PDF pages (no text layer): OCR with Tesseract when installed (default: auto)")
    parser.add_argument("--json", default="", help="also write the report as JSON here")


def main(args: argparse.Namespace) -> None:
    from month5_rag.rag import Rag, RagConfig
    from shared.config import config_from_args

    rag = Rag(config_from_args(RagConfig, args))
    report = rag.ingest(args.paths, chunking=config_from_args(ChunkConfig, args), ocr=args.ocr)
    print(report.summary())
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report.as_dict(), indent=1) + "\n")
