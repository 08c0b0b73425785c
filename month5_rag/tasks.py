"""Month 5 graded tasks. `pytest month5_rag -m m5_t3` grades one of them."""

from shared.grading import Task

TASKS = [
    Task("m5_t1", "chunking with a token budget and overlap", 15, ("chunk_sentences",),
         "Greedy: take sentences while the total stays <= budget (one over-long sentence is a chunk alone). "
         "The next chunk starts at the longest run of the previous chunk's last sentences totalling <= overlap "
         "(and <= budget minus the next new sentence), at least one sentence after the previous start. "
         "Return (first, stop) ranges."),
    Task("m5_t2", "cosine top-k", 10, ("cosine_top_k",),
         "Divide the dot products by both norms (guard zero norms); np.argpartition for the k best, then sort "
         "them best first, ties by index."),
    Task("m5_t3", "BM25 scoring", 15, ("bm25_scores",),
         "idf = ln(1 + (N - df + 0.5) / (df + 0.5)); per query token add idf * tf / (tf + k1 (1 - b + b |d| / "
         "avgdl)); repeated query tokens count each time, unknown ones add nothing."),
    Task("m5_t4", "reciprocal rank fusion", 10, ("reciprocal_rank_fusion",),
         "score(d) = sum over rankings of 1 / (k + rank), ranks from 1; sort by score, ties by first appearance."),
    Task("m5_t5", "recall@k and MRR@k", 10, ("recall_at_k", "mrr_at_k"),
         "recall@k: |top k & relevant| / |relevant| (0 if nothing is relevant); MRR@k: 1 / rank of the first "
         "relevant item in the top k, else 0."),
]
