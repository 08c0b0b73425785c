"""Month 5 graded exercises: your implementation.

Fill in every `raise NotImplementedError(...)`, then grade your work:

    python -m shared.exercises start month5
    pytest month5_rag --impl my_work/month5_rag.py            # all tasks
    pytest month5_rag --impl my_work/month5_rag.py -m m5_t3   # one task

The tests compare your functions with the reference (month5_rag/), with FAISS's exact inner-product
search, with the bm25s library's scores (rtol 1e-5) and with hand-computed cases.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np  # noqa: F401  (you will want it)

MONTH = "month5_rag"


# Task 5.1 (15 points) -----------------------------------------------------------------------
def chunk_sentences(lengths: list[int], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Pack sentences of the given token lengths into chunks; returns (first, stop) index ranges.

    Greedy: a chunk takes sentences while their total stays <= budget (a sentence longer than the
    budget is a chunk alone). The next chunk starts with the longest run of the previous chunk's
    last sentences whose total is <= overlap and leaves room, within the budget, for the next new
    sentence; and always at least one sentence later than the previous chunk started. So every
    chunk adds a new sentence. Every sentence is in some chunk, in order; the last chunk ends at
    len(lengths). No sentences: no chunks.
    Example: lengths [4, 4, 4, 4], budget 8, overlap 4 -> [(0, 2), (1, 3), (2, 4)].
    """
    raise NotImplementedError("Task 5.1: chunk_sentences")


# Task 5.2 (10 points) -----------------------------------------------------------------------
def cosine_top_k(query: np.ndarray, matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k rows of `matrix` (n, d) most cosine-similar to `query` (d,): (scores, indices), best first.

    Neither needs to be normalised; a zero row scores 0. k > n returns all n. Ties: lower index first.
    """
    raise NotImplementedError("Task 5.2: cosine_top_k")


# Task 5.3 (15 points) -----------------------------------------------------------------------
def bm25_scores(query: Sequence[str], corpus: Sequence[Sequence[str]], k1: float = 1.5,
                b: float = 0.75) -> np.ndarray:
    """BM25 (Lucene's variant) of every document of `corpus` (token lists) for `query`: shape (len(corpus),).

    idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5));
    score(q, d) = sum over the query's tokens t of idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl)).
    A repeated query token counts each time; a token in no document adds 0.
    """
    raise NotImplementedError("Task 5.3: bm25_scores")


# Task 5.4 (10 points) -----------------------------------------------------------------------
def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = 60) -> list[tuple[str, float]]:
    """Fuse rankings (lists of ids, best first): score(d) = sum over rankings of 1 / (k + rank), rank from 1.

    Returns (id, score) best first; ties go to the id seen first (ranking by ranking, top to bottom).
    """
    raise NotImplementedError("Task 5.4: reciprocal_rank_fusion")


# Task 5.5 (10 points) -----------------------------------------------------------------------
def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the relevant items found in the top k of `ranked` (0 when nothing is relevant)."""
    raise NotImplementedError("Task 5.5: recall_at_k")


def mrr_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1 / rank of the first relevant item within the top k (ranks from 1), else 0."""
    raise NotImplementedError("Task 5.5: mrr_at_k")
