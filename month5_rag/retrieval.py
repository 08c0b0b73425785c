"""Dense, BM25 and hybrid retrieval over one collection, with optional MMR and a file filter.

- dense: the question's embedding against the store (cosine);
- BM25: `bm25s` (Lucene's variant) over the same indexed texts, built on first use per collection and
  rebuilt when the collection changes; the file filter is a weight mask, applied before ranking;
- hybrid: reciprocal rank fusion of the two rankings (k = 60, the value of Cormack et al. 2009);
- MMR: re-rank the candidates to trade relevance against redundancy (lambda = 0.7).

The collection is chosen before anything is ranked: each collection is its own index.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from month5_rag.stores import StoredChunk, VectorStore

MODES = ("dense", "bm25", "hybrid")
RRF_K = 60
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


@dataclass
class Hit:
    """A retrieved chunk, its scores and its locator (plain data: month 6 logs it as is)."""
    id: str
    text: str
    score: float  # what the ranking used: cosine (dense), BM25 score, or RRF score (hybrid)
    file: str
    name: str
    page: int | None
    heading: str
    paragraph: int | None
    start: int
    end: int
    similarity: float | None = None  # cosine of the question and the chunk, when known
    retriever: str = "dense"
    paragraph_end: int | None = None

    @property
    def locator(self) -> str:
        """`handbook.pdf p.3`, or `policy.docx § Travel > Hotels ¶12` (paragraph documents have no pages)."""
        if self.page is not None:
            return f"{self.name} p.{self.page}"
        where = f" § {self.heading}" if self.heading else ""
        return f"{self.name}{where} ¶{self.paragraph}" if self.paragraph is not None else f"{self.name}{where}"

    @property
    def citation(self) -> str:
        return f"[{self.locator}]"

    def as_dict(self) -> dict:
        return {**asdict(self), "locator": self.locator}


def to_hit(chunk: StoredChunk, score: float, retriever: str, similarity: float | None = None) -> Hit:
    m = chunk.metadata
    return Hit(chunk.id, chunk.text, float(score), m["file"], m.get("name", m["file"]), m.get("page"),
               m.get("heading", ""), m.get("paragraph"), int(m.get("start", 0)), int(m.get("end", 0)),
               similarity, retriever, m.get("paragraph_end"))


def tokenize(text: str) -> list[str]:
    """Lower-cased words of two or more characters, as bm25s tokenizes (its default pattern)."""
    return _TOKEN.findall(text.lower())


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Fuse rankings (lists of ids, best first): score(d) = sum over rankings of 1 / (k + rank), rank
    from 1. Returns (id, score) best first; ties go to the id seen first (ranking by ranking)."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    order = {item: i for i, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))


def cosine_top_k(query: np.ndarray, matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k rows of `matrix` most cosine-similar to `query`: (scores, indices), best first.
    Neither needs to be normalised; a zero row scores 0."""
    q = np.asarray(query, dtype=np.float64).ravel()
    m = np.asarray(matrix, dtype=np.float64)
    norms = np.linalg.norm(m, axis=1) * max(np.linalg.norm(q), 1e-12)
    scores = (m @ q) / np.maximum(norms, 1e-12)
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k] if k else np.zeros(0, dtype=int)
    top = top[np.lexsort((top, -scores[top]))]  # best first, ties by index
    return scores[top], top


def mmr(query: np.ndarray, candidates: np.ndarray, k: int, lam: float = 0.7) -> list[int]:
    """Maximal marginal relevance: pick, one by one, the candidate maximising
    lam * sim(query, c) - (1 - lam) * max sim(c, already picked). Rows normalised."""
    relevance = candidates @ query
    picked: list[int] = []
    left = list(range(len(candidates)))
    while left and len(picked) < k:
        if picked:
            redundancy = (candidates[left] @ candidates[picked].T).max(axis=1)
        else:
            redundancy = np.zeros(len(left))
        best = int(np.argmax(lam * relevance[left] - (1 - lam) * redundancy))
        picked.append(left.pop(best))
    return picked


class BM25Index:
    """bm25s over a collection's indexed texts (title, heading and chunk), Lucene scoring."""

    def __init__(self, chunks: list[StoredChunk], k1: float = 1.5, b: float = 0.75) -> None:
        import bm25s

        self.chunks = chunks
        self.files = np.asarray([c.metadata["file"] for c in chunks])
        self.model = bm25s.BM25(k1=k1, b=b, method="lucene")
        corpus = [tokenize(c.metadata.get("indexed", c.text)) for c in chunks]
        if chunks:
            self.model.index(corpus, show_progress=False)

    def search(self, query: str, k: int, files: Sequence[str] | None = None) -> list[tuple[StoredChunk, float]]:
        if not self.chunks:
            return []
        tokens = [t for t in tokenize(query) if t in self.model.vocab_dict]
        if not tokens:
            return []
        scores = self.model.get_scores(tokens)
        if files:
            scores = np.where(np.isin(self.files, list(files)), scores, -np.inf)
        k = min(k, len(scores))
        top = np.argsort(-scores, kind="stable")[:k]
        return [(self.chunks[i], float(scores[i])) for i in top if np.isfinite(scores[i]) and scores[i] > 0]


class Retriever:
    """Search one store; `search(question, collection, k, mode)` returns `Hit`s best first."""

    def __init__(self, store: VectorStore, embedder, depth: int = 50) -> None:
        self.store, self.embedder, self.depth = store, embedder, depth
        self._bm25: dict[str, tuple[int, BM25Index]] = {}

    def invalidate(self, collection: str) -> None:
        self._bm25.pop(collection, None)

    def bm25_index(self, collection: str) -> BM25Index:
        count = self.store.count(collection)
        cached = self._bm25.get(collection)
        if cached is None or cached[0] != count:
            self._bm25[collection] = (count, BM25Index(list(self.store.chunks(collection))))
        return self._bm25[collection][1]

    def dense(self, question: str, collection: str, k: int, files=None, vector=None) -> list[Hit]:
        vector = self.embedder.embed_queries([question])[0] if vector is None else vector
        return [to_hit(c, c.score, "dense", c.score) for c in self.store.query(collection, vector, k, files)]

    def bm25(self, question: str, collection: str, k: int, files=None) -> list[Hit]:
        return [to_hit(c, s, "bm25") for c, s in self.bm25_index(collection).search(question, k, files)]

    def hybrid(self, question: str, collection: str, k: int, files=None, vector=None) -> list[Hit]:
        depth = max(self.depth, k)
        dense = self.dense(question, collection, depth, files, vector)
        sparse = self.bm25(question, collection, depth, files)
        by_id = {h.id: h for h in sparse} | {h.id: h for h in dense}  # dense hits carry the similarity
        fused = reciprocal_rank_fusion([[h.id for h in dense], [h.id for h in sparse]])[:k]
        hits = []
        for chunk_id, score in fused:
            hit = by_id[chunk_id]
            hits.append(Hit(**{**asdict(hit), "score": score, "retriever": "hybrid"}))
        return hits

    def search(self, question: str, collection: str, k: int = 5, mode: str = "hybrid", files=None,
               use_mmr: bool = False) -> list[Hit]:
        if mode not in MODES:
            raise ValueError(f"retrieval mode {mode!r}: choose one of {', '.join(MODES)}")
        vector = self.embedder.embed_queries([question])[0] if mode != "bm25" else None
        pool = max(k * 4, 20) if use_mmr else k
        if mode == "dense":
            hits = self.dense(question, collection, pool, files, vector)
        elif mode == "bm25":
            hits = self.bm25(question, collection, pool, files)
        else:
            hits = self.hybrid(question, collection, pool, files, vector)
        if use_mmr and len(hits) > k:
            if vector is None:
                vector = self.embedder.embed_queries([question])[0]
            vectors = self.store.embeddings(collection, [h.id for h in hits])
            hits = [hits[i] for i in mmr(vector, vectors, k)]
        return hits[:k]
