"""BM25 from scratch (Lucene's variant), the graded exercise; retrieval itself uses the kept library
bm25s (retrieval.BM25Index), and the tests hold this one to bm25s's scores.

    idf(t)      = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
    score(q, d) = sum over the query's tokens t of idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))

N documents, df(t) how many contain t, tf(t, d) how often t occurs in d, |d| its length in tokens,
avgdl the mean length. A query token repeated counts each time; one in no document adds 0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np


def bm25_scores(query: Sequence[str], corpus: Sequence[Sequence[str]], k1: float = 1.5,
                b: float = 0.75) -> np.ndarray:
    """BM25 score of every document of `corpus` (token lists) for the `query` tokens: shape (len(corpus),)."""
    n = len(corpus)
    lengths = np.asarray([len(d) for d in corpus], dtype=np.float64)
    avgdl = lengths.mean() if n else 0.0
    counts = [Counter(d) for d in corpus]
    df = Counter(t for c in counts for t in c)
    scores = np.zeros(n, dtype=np.float64)
    norm = k1 * (1 - b + b * lengths / max(avgdl, 1e-12))
    for token in query:
        if df[token] == 0:
            continue
        idf = math.log(1 + (n - df[token] + 0.5) / (df[token] + 0.5))
        tf = np.asarray([c[token] for c in counts], dtype=np.float64)
        scores += idf * tf / (tf + norm)
    return scores
