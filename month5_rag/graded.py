"""The reference side of month 5's graded exercises: the names a learner implements (see tasks.py),
exported from the real code. A learner's file exports the same names."""

from month5_rag.bm25 import bm25_scores
from month5_rag.chunking import chunk_sentences
from month5_rag.metrics import mrr_at_k, recall_at_k
from month5_rag.retrieval import cosine_top_k, reciprocal_rank_fusion

MONTH = "month5_rag"

GRADED_METHODS: dict[str, tuple[str, ...]] = {}

__all__ = ["bm25_scores", "chunk_sentences", "cosine_top_k", "mrr_at_k", "recall_at_k", "reciprocal_rank_fusion"]
