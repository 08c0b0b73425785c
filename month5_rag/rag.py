"""The month's seam for month 6: documents in, cited answers out, as plain data.

    from month5_rag.rag import Rag, RagConfig
    rag = Rag(RagConfig(store="faiss", store_dir="runs/month5/store"))
    report = rag.ingest(["docs/"], collection="team-a")      # IngestReport (per-file status, warnings)
    hits = rag.search("hotel limit in Zurich", "team-a", k=5)  # [Hit] with score and locator
    answer = rag.answer("What is the hotel limit?", "team-a")  # Answer: text, citations, evidence

Models load once per `Rag` and are shared: the embedding model on first use, the chat model only
when `answer(..., generate=True)` needs it (or pass a month-2 `Backend` as `backend`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from month5_rag.answer import DEFAULT_THRESHOLD, Answer, Answerer
from month5_rag.chunking import ChunkConfig
from month5_rag.embeddings import DEFAULT_MODEL, load_embedder
from month5_rag.ingest import IngestReport, Manifest, discover, ingest_paths, remove_file
from month5_rag.retrieval import MODES, Hit, Retriever
from month5_rag.stores import STORES, check_collection_name, open_store
from shared.errors import UserError


@dataclass
class RagConfig:
    store: str = field(default="chroma", metadata={
        "help": "vector store: chroma (embedded), chroma-http (a `chroma run` server), faiss, milvus (Milvus Lite)",
        "choices": STORES})
    store_dir: str = field(default="runs/month5/store", metadata={
        "help": "folder of the store and of the ingestion manifest"})
    collection: str = field(default="default", metadata={"help": "document collection (one per team or user)"})
    host: str = field(default="127.0.0.1", metadata={"help": "chroma-http: server host"})
    port: int = field(default=8000, metadata={"help": "chroma-http: server port"})
    faiss_index: str = field(default="flat", metadata={"help": "faiss: exact (flat) or approximate (hnsw)",
                                                       "choices": ("flat", "hnsw")})
    embedding_model: str = field(default="", metadata={
        "help": f"sentence-transformers model: a folder or hub name (BGE, E5 ...), or 'hashing' (no model); "
                f"default: the collection's own, else {DEFAULT_MODEL} (offline)"})
    batch_size: int = field(default=32, metadata={"help": "texts per embedding batch"})
    progress: bool = field(default=True, metadata={"help": "progress bars"})

    def __post_init__(self) -> None:
        check_collection_name(self.collection)
        if self.batch_size < 1 or not 0 < self.port < 65536:
            raise ValueError("--batch-size must be >= 1 and --port in 1..65535")


@dataclass
class AnswerConfig:
    mode: str = field(default="hybrid", metadata={"help": "retriever", "choices": MODES})
    k: int = field(default=5, metadata={"help": "chunks retrieved"})
    threshold: float = field(default=DEFAULT_THRESHOLD, metadata={
        "help": "abstain ('Not found in the documents') below this evidence similarity (calibrated)"})
    generate: bool = field(default=True, metadata={
        "help": "let the chat model word the answer (false: the evidence sentence is the answer)"})
    chat_model: str = field(default="smollm2", metadata={"help": "chat model for --generate (month 2's loader)"})
    max_new_tokens: int = field(default=48, metadata={"help": "longest generated answer, in tokens"})
    file: str = field(default="", metadata={"help": "search only this file (path or name)"})

    def __post_init__(self) -> None:
        if self.k < 1 or self.max_new_tokens < 1:
            raise ValueError("--k and --max-new-tokens must be at least 1")
        if not -1 <= self.threshold <= 1:
            raise ValueError(f"--threshold is a cosine similarity, in [-1, 1] (got {self.threshold})")


class Rag:
    def __init__(self, cfg: RagConfig | None = None, embedder=None, backend=None) -> None:
        self.cfg = cfg or RagConfig()
        root = Path(self.cfg.store_dir)
        # one manifest per store: it says what that store holds
        where = f"-{self.cfg.host}-{self.cfg.port}" if self.cfg.store == "chroma-http" else ""
        self.manifest = Manifest(root / f"manifest-{self.cfg.store}{where}.sqlite")
        self.store = open_store(self.cfg.store, root, self.cfg.host, self.cfg.port, self.cfg.faiss_index)
        self._embedder, self._backend = embedder, backend
        self._retriever: Retriever | None = None

    # -- shared models -------------------------------------------------------------------------------
    def embedder(self, collection: str | None = None):
        if self._embedder is None:
            collection = collection or self.cfg.collection
            recorded = self.manifest.collection_model(collection)
            if recorded and self.cfg.embedding_model and self.cfg.embedding_model != recorded[0]:
                raise UserError(f"collection {collection!r} was built with the embedding model {recorded[0]!r}; "
                                f"use --embedding-model {recorded[0]} or another collection")
            name = self.cfg.embedding_model or (recorded[0] if recorded else DEFAULT_MODEL)
            self._embedder = load_embedder(name, self.cfg.batch_size)
        return self._embedder

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            self._retriever = Retriever(self.store, self.embedder())
        return self._retriever

    def backend(self, chat_model: str = "smollm2"):
        if self._backend is None:
            from month2_llm_core.chat import TransformersBackend

            try:
                self._backend = TransformersBackend.load(chat_model, fast=True)
            except (OSError, RuntimeError, ValueError) as err:
                raise UserError(f"cannot load the chat model {chat_model!r}: {err}") from err
        return self._backend

    # -- documents --------------------------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path], collection: str | None = None, chunking: ChunkConfig | None = None,
               ocr: str = "auto") -> IngestReport:
        collection = check_collection_name(collection or self.cfg.collection)
        paths = list(paths)
        discover(paths)  # a missing path is the user's mistake: say so before loading any model
        report = ingest_paths(paths, collection, self.store, self.embedder(collection), self.manifest, chunking,
                              ocr, self.cfg.progress)
        if self._retriever is not None:
            self._retriever.invalidate(collection)
        return report

    def files(self, collection: str | None = None) -> list[dict]:
        return self.manifest.files(collection or self.cfg.collection)

    def collections(self) -> list[str]:
        return self.manifest.collections()

    def resolve_file(self, file: str, collection: str) -> str:
        """A stored file's key from its path or its name."""
        known = [f["path"] for f in self.files(collection)]
        given = str(Path(file).expanduser().resolve())
        matches = [p for p in known if p == given] or [p for p in known if Path(p).name == file]
        if not matches:
            raise UserError(f"{file}: not in collection {collection!r}; `python -m month5_rag list` shows its files")
        if len(matches) > 1:
            raise UserError(f"{file}: several files of that name in {collection!r}; give the full path")
        return matches[0]

    def delete(self, file: str, collection: str | None = None) -> None:
        collection = collection or self.cfg.collection
        remove_file(self.resolve_file(file, collection), collection, self.store, self.manifest)
        if self._retriever is not None:
            self._retriever.invalidate(collection)

    # -- retrieval and answers ----------------------------------------------------------------------
    def _check(self, collection: str) -> str:
        check_collection_name(collection)
        if collection not in self.collections():
            raise UserError(f"no collection {collection!r}; ingest documents into it first "
                            f"(known: {', '.join(self.collections()) or 'none'})")
        return collection

    def search(self, query: str, collection: str | None = None, k: int = 5, mode: str = "hybrid",
               files: list[str] | None = None, use_mmr: bool = False) -> list[Hit]:
        collection = self._check(collection or self.cfg.collection)
        self.embedder(collection)
        return self.retriever.search(query, collection, k, mode, files, use_mmr)

    def answerer(self, cfg: AnswerConfig | None = None) -> Answerer:
        cfg = cfg or AnswerConfig(generate=False)
        backend = self.backend(cfg.chat_model) if cfg.generate else None
        return Answerer(self.retriever, backend, cfg.threshold, cfg.k, cfg.mode, cfg.max_new_tokens)

    def answer(self, question: str, collection: str | None = None, cfg: AnswerConfig | None = None) -> Answer:
        """text, citations and evidence; `cfg.generate` chooses the chat model's wording or the evidence's."""
        collection = self._check(collection or self.cfg.collection)
        self.embedder(collection)
        cfg = cfg or AnswerConfig(generate=False)
        files = [self.resolve_file(cfg.file, collection)] if cfg.file else None
        return self.answerer(cfg).answer(question, collection, files)
