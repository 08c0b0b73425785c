"""Ranking metrics for one query: recall@k, MRR@k, nDCG@k (binary relevance).

`ranked` is a list of ids, best first; `relevant` the set of ids that answer the query. The
evaluation averages them over queries. With one relevant item (as in our sets, where the chunks
holding the answer collapse to one item, see evaluate.py) recall@k is the hit rate at k.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence


def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the relevant items found in the top k (0 when nothing is relevant)."""
    if not relevant:
        return 0.0
    return len(set(ranked[:k]) & set(relevant)) / len(set(relevant))


def mrr_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1 / rank of the first relevant item within the top k (ranks from 1), else 0."""
    for rank, item in enumerate(ranked[:k], start=1):
        if item in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """DCG of the top k (gain 1 per relevant item at rank r, discounted by log2(r + 1)) over the ideal DCG."""
    dcg = sum(1.0 / math.log2(rank + 1) for rank, item in enumerate(ranked[:k], start=1) if item in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(set(relevant)), k) + 1))
    return dcg / ideal if ideal else 0.0
