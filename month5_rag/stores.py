"""One vector-store interface, four ways to keep the vectors.

- `ChromaStore`: Chroma embedded (`PersistentClient`, the default) or a `chroma run` server
  (`HttpClient`, the scale-out path). We always pass our own embeddings: Chroma's default
  embedding function would try to download a model.
- `FaissStore`: FAISS flat (exact) or HNSW (approximate), one index per collection persisted to
  disk, with the chunks' text and metadata (and the vectors, so an index can be rebuilt) in SQLite.
- `MilvusStore`: Milvus Lite, embedded, through pymilvus.

Each of our collections (one per team or user) is its own physical collection or index, so a
search in one cannot return another's chunks: the collection is chosen before any ranking. Within a
collection, `files` filters by file before ranking too (Chroma `where`, a FAISS `IDSelector`, a
Milvus filter expression). Scores are cosine similarities (the vectors are normalised).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from shared.errors import UserError

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,61}[A-Za-z0-9]$|^[A-Za-z0-9]$")
STORES = ("chroma", "chroma-http", "faiss", "milvus")


def check_collection_name(name: str) -> str:
    if not COLLECTION_NAME.match(name):
        raise UserError(f"collection name {name!r}: use 1-63 letters, digits, '-' or '_', starting and ending "
                        "with a letter or digit")
    return name


@dataclass
class StoredChunk:
    id: str
    text: str
    metadata: dict
    score: float = 0.0


class VectorStore(Protocol):
    name: str

    def add(self, collection: str, ids: Sequence[str], embeddings: np.ndarray, texts: Sequence[str],
            metadatas: Sequence[dict]) -> None: ...

    def existing(self, collection: str, ids: Sequence[str]) -> set[str]: ...

    def delete_file(self, collection: str, file: str) -> None: ...

    def query(self, collection: str, embedding: np.ndarray, k: int,
              files: Sequence[str] | None = None) -> list[StoredChunk]: ...

    def chunks(self, collection: str) -> Iterator[StoredChunk]: ...

    def embeddings(self, collection: str, ids: Sequence[str]) -> np.ndarray: ...

    def count(self, collection: str) -> int: ...

    def collections(self) -> list[str]: ...

    def drop(self, collection: str) -> None: ...

    def flush(self) -> None: ...


# -- Chroma ----------------------------------------------------------------------------------------
class ChromaStore:
    PREFIX = "rag-"  # our collection "team-a" is Chroma's "rag-team-a" (Chroma wants >= 3 characters)

    def __init__(self, path: str | Path | None = None, host: str | None = None, port: int = 8000) -> None:
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)
        if host:
            self.name = f"chroma-http://{host}:{port}"
            try:
                self.client = chromadb.HttpClient(host=host, port=port, settings=settings)
                self.client.heartbeat()
            except Exception as err:  # connection refused, a non-Chroma server
                raise UserError(f"no Chroma server at http://{host}:{port} ({type(err).__name__}); start one "
                                f"with: chroma run --path DIR --host {host} --port {port}") from err
        else:
            self.name = "chroma"
            self.client = chromadb.PersistentClient(path=str(path), settings=settings)
        self._cache: dict[str, object] = {}
        self.batch = self.client.get_max_batch_size()

    def _col(self, collection: str):
        if collection not in self._cache:
            self._cache[collection] = self.client.get_or_create_collection(
                self.PREFIX + collection, embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
        return self._cache[collection]

    def add(self, collection, ids, embeddings, texts, metadatas) -> None:
        col = self._col(collection)
        for i in range(0, len(ids), self.batch):
            j = i + self.batch
            col.upsert(ids=list(ids[i:j]), embeddings=np.asarray(embeddings[i:j]), documents=list(texts[i:j]),
                       metadatas=[_chroma_meta(m) for m in metadatas[i:j]])

    def existing(self, collection, ids) -> set[str]:
        col, found = self._col(collection), set()
        for i in range(0, len(ids), self.batch):
            found |= set(col.get(ids=list(ids[i:i + self.batch]), include=[])["ids"])
        return found

    def delete_file(self, collection, file) -> None:
        self._col(collection).delete(where={"file": file})

    def query(self, collection, embedding, k, files=None) -> list[StoredChunk]:
        col = self._col(collection)
        if col.count() == 0:
            return []
        where = {"file": {"$in": list(files)}} if files else None
        result = col.query(query_embeddings=np.asarray(embedding, dtype=np.float32)[None], n_results=k, where=where,
                           include=["documents", "metadatas", "distances"])
        return [StoredChunk(i, d, dict(m), 1.0 - float(dist)) for i, d, m, dist in
                zip(result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0])]

    def chunks(self, collection) -> Iterator[StoredChunk]:
        col, offset, page = self._col(collection), 0, 1000
        while True:
            got = col.get(include=["documents", "metadatas"], limit=page, offset=offset)
            for i, d, m in zip(got["ids"], got["documents"], got["metadatas"]):
                yield StoredChunk(i, d, dict(m))
            if len(got["ids"]) < page:
                return
            offset += page

    def embeddings(self, collection, ids) -> np.ndarray:
        got = self._col(collection).get(ids=list(ids), include=["embeddings"])
        by_id = dict(zip(got["ids"], got["embeddings"]))
        return np.asarray([by_id[i] for i in ids], dtype=np.float32)

    def count(self, collection) -> int:
        return self._col(collection).count()

    def collections(self) -> list[str]:
        return sorted(c.name[len(self.PREFIX):] for c in self.client.list_collections()
                      if c.name.startswith(self.PREFIX))

    def drop(self, collection) -> None:
        self._cache.pop(collection, None)
        if collection in self.collections():
            self.client.delete_collection(self.PREFIX + collection)

    def flush(self) -> None:  # Chroma writes as it goes
        pass


def _chroma_meta(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if v is not None}  # Chroma rejects None values


# -- FAISS -----------------------------------------------------------------------------------------
class FaissStore:
    """Per collection, a folder with `chunks.sqlite` (the source of truth: text, metadata, vector) and
    `index.faiss` (a cache of the vectors for search). The index file records the SQLite
    generation it was built from; when they differ (a kill before the index was written, a
    deletion) the index is rebuilt from SQLite on open. HNSW cannot remove vectors: a deletion
    rebuilds it."""

    def __init__(self, path: str | Path, index: str = "flat", hnsw_m: int = 32, ef_search: int = 64,
                 ef_construction: int = 80) -> None:
        if index not in ("flat", "hnsw"):
            raise ValueError(f"faiss index {index!r}: choose flat or hnsw")
        self.root, self.kind = Path(path), index
        self.hnsw_m, self.ef_search, self.ef_construction = hnsw_m, ef_search, ef_construction
        self.name = f"faiss-{index}"
        self._open: dict[str, _FaissCollection] = {}

    def _col(self, collection: str, create: bool = True) -> _FaissCollection:
        if collection not in self._open:
            folder = self.root / collection
            if not create and not folder.exists():
                raise KeyError(collection)
            self._open[collection] = _FaissCollection(folder, self)
        return self._open[collection]

    def add(self, collection, ids, embeddings, texts, metadatas) -> None:
        self._col(collection).add(ids, embeddings, texts, metadatas)

    def existing(self, collection, ids) -> set[str]:
        return self._col(collection).existing(ids)

    def delete_file(self, collection, file) -> None:
        self._col(collection).delete_file(file)

    def query(self, collection, embedding, k, files=None) -> list[StoredChunk]:
        return self._col(collection).query(embedding, k, files)

    def chunks(self, collection) -> Iterator[StoredChunk]:
        return self._col(collection).chunks()

    def embeddings(self, collection, ids) -> np.ndarray:
        return self._col(collection).vectors(ids)

    def count(self, collection) -> int:
        return self._col(collection).count()

    def collections(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "chunks.sqlite").is_file())

    def drop(self, collection) -> None:
        import shutil

        col = self._open.pop(collection, None)
        if col is not None:
            col.db.close()
        shutil.rmtree(self.root / collection, ignore_errors=True)

    def flush(self) -> None:
        for col in self._open.values():
            col.flush()


class _FaissCollection:
    def __init__(self, folder: Path, store: FaissStore) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.store = folder, store
        self.db = sqlite3.connect(folder / "chunks.sqlite", check_same_thread=False)  # see Manifest
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS chunks (row INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, file TEXT NOT NULL,
                text TEXT NOT NULL, meta TEXT NOT NULL, vector BLOB NOT NULL);
            CREATE INDEX IF NOT EXISTS chunks_file ON chunks(file);
            CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT OR IGNORE INTO state VALUES ('generation', '0');
        """)
        self.db.commit()
        self.index = None
        self.dirty = False
        self._load_or_rebuild()

    def generation(self) -> int:
        return int(self.db.execute("SELECT value FROM state WHERE key='generation'").fetchone()[0])

    def _bump(self) -> None:
        self.db.execute("UPDATE state SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")

    def _new_index(self, dim: int):
        import faiss

        if self.store.kind == "hnsw":
            base = faiss.IndexHNSWFlat(dim, self.store.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = self.store.ef_construction
            base.hnsw.efSearch = self.store.ef_search
        else:
            base = faiss.IndexFlatIP(dim)
        return faiss.IndexIDMap2(base)

    def _load_or_rebuild(self) -> None:
        import faiss

        index_file = self.folder / f"index-{self.store.kind}.faiss"
        info_file = index_file.with_suffix(".json")
        if index_file.is_file() and info_file.is_file():
            info = json.loads(info_file.read_text())
            if info.get("generation") == self.generation():
                self.index = faiss.read_index(str(index_file))
                return
        self._rebuild()

    def _rebuild(self) -> None:
        self.index = None
        rows = self.db.execute("SELECT row, vector FROM chunks ORDER BY row")
        while batch := rows.fetchmany(10000):
            ids = np.asarray([r for r, _ in batch], dtype=np.int64)
            vectors = np.stack([np.frombuffer(v, dtype=np.float32) for _, v in batch])
            if self.index is None:
                self.index = self._new_index(vectors.shape[1])
            self.index.add_with_ids(vectors, ids)
        self.dirty = True

    def add(self, ids, embeddings, texts, metadatas) -> None:
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        have = self.existing(ids)
        fresh = [(i, e, t, m) for i, e, t, m in zip(ids, embeddings, texts, metadatas) if i not in have]
        if not fresh:
            return
        cur = self.db.cursor()
        rows = []
        for chunk_id, vector, text, meta in fresh:
            cur.execute("INSERT INTO chunks (id, file, text, meta, vector) VALUES (?, ?, ?, ?, ?)",
                        (chunk_id, meta["file"], text, json.dumps(meta), vector.tobytes()))
            rows.append(cur.lastrowid)
        self._bump()
        self.db.commit()
        if self.index is None:
            self.index = self._new_index(embeddings.shape[1])
        self.index.add_with_ids(np.stack([e for _, e, _, _ in fresh]), np.asarray(rows, dtype=np.int64))
        self.dirty = True

    def existing(self, ids) -> set[str]:
        found = set()
        ids = list(ids)
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            marks = ",".join("?" * len(part))
            found |= {r[0] for r in self.db.execute(f"SELECT id FROM chunks WHERE id IN ({marks})", part)}
        return found

    def delete_file(self, file: str) -> None:
        rows = [r[0] for r in self.db.execute("SELECT row FROM chunks WHERE file = ?", (file,))]
        if not rows:
            return
        self.db.execute("DELETE FROM chunks WHERE file = ?", (file,))
        self._bump()
        self.db.commit()
        if self.store.kind == "flat" and self.index is not None:
            self.index.remove_ids(np.asarray(rows, dtype=np.int64))
            self.dirty = True
        else:
            self._rebuild()

    def query(self, embedding, k, files=None) -> list[StoredChunk]:
        import faiss

        if self.index is None or self.index.ntotal == 0:
            return []
        query = np.asarray(embedding, dtype=np.float32).reshape(1, -1)
        params = None
        if files:
            marks = ",".join("?" * len(files))
            allowed = np.asarray([r[0] for r in self.db.execute(f"SELECT row FROM chunks WHERE file IN ({marks})",
                                                                list(files))], dtype=np.int64)
            if allowed.size == 0:
                return []
            selector = faiss.IDSelectorBatch(allowed)
            params = (faiss.SearchParametersHNSW(sel=selector, efSearch=max(self.store.ef_search, k))
                      if self.store.kind == "hnsw" else faiss.SearchParameters(sel=selector))
        elif self.store.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.store.ef_search, k))
        scores, rows = self.index.search(query, min(k, self.index.ntotal), params=params)
        hits = [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]
        if not hits:
            return []
        marks = ",".join("?" * len(hits))
        found = {r: (i, t, m) for r, i, t, m in self.db.execute(
            f"SELECT row, id, text, meta FROM chunks WHERE row IN ({marks})", [r for r, _ in hits])}
        return [StoredChunk(found[r][0], found[r][1], json.loads(found[r][2]), s) for r, s in hits if r in found]

    def chunks(self) -> Iterator[StoredChunk]:
        for chunk_id, text, meta in self.db.execute("SELECT id, text, meta FROM chunks ORDER BY row"):
            yield StoredChunk(chunk_id, text, json.loads(meta))

    def vectors(self, ids) -> np.ndarray:
        marks = ",".join("?" * len(ids))
        found = dict(self.db.execute(f"SELECT id, vector FROM chunks WHERE id IN ({marks})", list(ids)))
        return np.stack([np.frombuffer(found[i], dtype=np.float32) for i in ids])

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]

    def flush(self) -> None:
        """Write the index atomically, then the generation it holds."""
        import faiss

        if not self.dirty or self.index is None:
            return
        index_file = self.folder / f"index-{self.store.kind}.faiss"
        tmp = index_file.with_suffix(".tmp")
        faiss.write_index(self.index, str(tmp))
        os.replace(tmp, index_file)
        info = index_file.with_suffix(".json")
        info.with_suffix(".jtmp").write_text(json.dumps({"generation": self.generation(),
                                                          "ntotal": int(self.index.ntotal)}))
        os.replace(info.with_suffix(".jtmp"), info)
        self.dirty = False


# -- Milvus Lite -----------------------------------------------------------------------------------
class MilvusStore:
    PREFIX = "rag_"  # Milvus names: letters, digits, underscores
    FIELDS = ["id", "text", "meta"]

    def __init__(self, path: str | Path, dim: int | None = None) -> None:
        from pymilvus import MilvusClient

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.name = "milvus-lite"
        self.client = MilvusClient(str(path))
        self.dim = dim

    def _physical(self, collection: str) -> str:
        return self.PREFIX + collection.replace("-", "__")

    def _ensure(self, collection: str, dim: int) -> str:
        name = self._physical(collection)
        if not self.client.has_collection(name):
            self.client.create_collection(name, dimension=dim, primary_field_name="id", id_type="string",
                                          max_length=64, metric_type="COSINE", auto_id=False,
                                          enable_dynamic_field=True)
        return name

    def _exists(self, collection: str) -> str | None:
        name = self._physical(collection)
        return name if self.client.has_collection(name) else None

    def add(self, collection, ids, embeddings, texts, metadatas) -> None:
        name = self._ensure(collection, int(np.asarray(embeddings).shape[1]))
        rows = [{"id": i, "vector": np.asarray(e, dtype=np.float32).tolist(), "text": t, "file": m["file"],
                 "meta": json.dumps(m)} for i, e, t, m in zip(ids, embeddings, texts, metadatas)]
        self.client.upsert(name, rows)

    def existing(self, collection, ids) -> set[str]:
        name = self._exists(collection)
        if name is None or not ids:
            return set()
        return {r["id"] for r in self.client.get(name, ids=list(ids), output_fields=["id"])}

    def delete_file(self, collection, file) -> None:
        name = self._exists(collection)
        if name is not None:
            self.client.delete(name, filter=f"file == {json.dumps(file)}")

    def query(self, collection, embedding, k, files=None) -> list[StoredChunk]:
        name = self._exists(collection)
        if name is None:
            return []
        flt = f"file in {json.dumps(list(files))}" if files else ""
        result = self.client.search(name, data=[np.asarray(embedding, dtype=np.float32).tolist()], limit=k,
                                    filter=flt, output_fields=self.FIELDS)
        return [StoredChunk(h["id"], h["entity"]["text"], json.loads(h["entity"]["meta"]), float(h["distance"]))
                for h in result[0]]

    def chunks(self, collection) -> Iterator[StoredChunk]:
        name = self._exists(collection)
        if name is None:
            return
        iterator = self.client.query_iterator(name, batch_size=1000, filter="", output_fields=self.FIELDS)
        while batch := iterator.next():
            for r in batch:
                yield StoredChunk(r["id"], r["text"], json.loads(r["meta"]))
        iterator.close()

    def embeddings(self, collection, ids) -> np.ndarray:
        name = self._physical(collection)
        found = {r["id"]: r["vector"] for r in self.client.get(name, ids=list(ids), output_fields=["vector"])}
        return np.asarray([found[i] for i in ids], dtype=np.float32)

    def count(self, collection) -> int:
        name = self._exists(collection)
        if name is None:
            return 0
        return int(self.client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"])

    def collections(self) -> list[str]:
        return sorted(n[len(self.PREFIX):].replace("__", "-") for n in self.client.list_collections()
                      if n.startswith(self.PREFIX))

    def drop(self, collection) -> None:
        name = self._exists(collection)
        if name is not None:
            self.client.drop_collection(name)

    def flush(self) -> None:
        for name in self.client.list_collections():
            self.client.flush(name)


def open_store(kind: str, store_dir: str | Path, host: str = "127.0.0.1", port: int = 8000,
               faiss_index: str = "flat") -> VectorStore:
    """The store named on the command line; its files live under `store_dir`."""
    root = Path(store_dir)
    if kind == "chroma":
        return ChromaStore(root / "chroma")
    if kind == "chroma-http":
        return ChromaStore(host=host, port=port)
    if kind == "faiss":
        return FaissStore(root / "faiss", faiss_index)
    if kind == "milvus":
        return MilvusStore(root / "milvus.db")
    raise UserError(f"unknown store {kind!r}; choose one of {', '.join(STORES)}")
