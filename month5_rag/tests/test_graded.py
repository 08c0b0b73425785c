"""The graded exercises, against libraries and hand-computed cases. Each test carries one task marker."""

from __future__ import annotations

import numpy as np
import pytest


# -- Task 5.1: chunking ---------------------------------------------------------------------------
@pytest.mark.m5_t1
def test_chunking_examples(impl):
    assert impl.chunk_sentences([4, 4, 4, 4], 8, 4) == [(0, 2), (1, 3), (2, 4)]
    assert impl.chunk_sentences([4, 4, 4, 4], 8, 0) == [(0, 2), (2, 4)]
    assert impl.chunk_sentences([], 8, 2) == []
    assert impl.chunk_sentences([20, 3, 3], 8, 3) == [(0, 1), (1, 3)]  # an over-long sentence alone
    assert impl.chunk_sentences([3, 3, 3], 100, 50) == [(0, 3)]


@pytest.mark.m5_t1
@pytest.mark.parametrize("seed", range(20))
def test_chunking_properties_and_reference(impl, seed):
    from month5_rag.chunking import chunk_sentences

    rng = np.random.default_rng(seed)
    lengths = [int(x) for x in rng.integers(1, 40, size=int(rng.integers(1, 60)))]
    budget, overlap = int(rng.integers(20, 120)), int(rng.integers(0, 30))
    ranges = impl.chunk_sentences(lengths, budget, overlap)
    assert ranges == chunk_sentences(lengths, budget, overlap)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(lengths)
    for (a, b), (c, d) in zip(ranges, ranges[1:]):
        assert a < c <= b < d  # each chunk starts later, overlaps only backwards, and adds a sentence
        assert sum(lengths[c:b]) <= overlap
    for a, b in ranges:
        assert b - a == 1 or sum(lengths[a:b]) <= budget


# -- Task 5.2: cosine top-k -----------------------------------------------------------------------
@pytest.mark.m5_t2
def test_cosine_top_k_matches_faiss(impl):
    import faiss

    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(500, 32)).astype(np.float32) * rng.uniform(0.1, 5, size=(500, 1)).astype(np.float32)
    query = rng.normal(size=32).astype(np.float32)
    normed = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(32)
    index.add(normed)
    ref_scores, ref_ids = index.search((query / np.linalg.norm(query))[None], 10)
    scores, ids = impl.cosine_top_k(query, matrix, 10)
    assert list(ids) == list(ref_ids[0])
    np.testing.assert_allclose(scores, ref_scores[0], rtol=1e-5, atol=1e-6)


@pytest.mark.m5_t2
def test_cosine_top_k_edges(impl):
    matrix = np.array([[1.0, 0.0], [0.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    scores, ids = impl.cosine_top_k(np.array([1.0, 0.0]), matrix, 10)
    assert list(ids) == [0, 2, 1, 3]  # ties by index; the zero row scores 0, like the orthogonal one
    np.testing.assert_allclose(scores, [1, 1, 0, 0], atol=1e-9)


# -- Task 5.3: BM25 -------------------------------------------------------------------------------
@pytest.mark.m5_t3
@pytest.mark.parametrize("k1, b", [(1.5, 0.75), (1.2, 0.3), (2.0, 1.0)])
def test_bm25_matches_bm25s(impl, k1, b, handwritten):
    import bm25s

    from month5_rag.documents import read_passages
    from month5_rag.retrieval import tokenize

    corpus = [tokenize(p.text) for f in sorted(handwritten.folder.iterdir()) for p in read_passages(f, [])]
    model = bm25s.BM25(k1=k1, b=b, method="lucene")
    model.index(corpus, show_progress=False)
    for question in ["how long are invoices kept", "pension contribution match salary", "incident severity page"]:
        query = [t for t in tokenize(question) if t in model.vocab_dict]
        np.testing.assert_allclose(impl.bm25_scores(query, corpus, k1, b), model.get_scores(query), rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.m5_t3
def test_bm25_by_hand(impl):
    corpus = [["a", "b"], ["a", "a", "c"], ["d"]]
    scores = impl.bm25_scores(["a", "zzz"], corpus, k1=1.5, b=0.75)
    idf = np.log(1 + (3 - 2 + 0.5) / (2 + 0.5))
    avgdl = 2.0
    expected = [idf * 1 / (1 + 1.5 * (0.25 + 0.75 * 2 / avgdl)), idf * 2 / (2 + 1.5 * (0.25 + 0.75 * 3 / avgdl)), 0]
    np.testing.assert_allclose(scores, expected, rtol=1e-9)
    np.testing.assert_allclose(impl.bm25_scores(["a", "a"], corpus), 2 * np.asarray(expected), rtol=1e-9)


# -- Task 5.4: RRF --------------------------------------------------------------------------------
@pytest.mark.m5_t4
def test_rrf_by_hand(impl):
    fused = impl.reciprocal_rank_fusion([["a", "b", "c"], ["c", "a", "d"]], k=60)
    expected = {"a": 1 / 61 + 1 / 62, "b": 1 / 62, "c": 1 / 63 + 1 / 61, "d": 1 / 63}
    assert [i for i, _ in fused] == ["a", "c", "b", "d"]
    for item, score in fused:
        assert score == pytest.approx(expected[item], rel=1e-12)


@pytest.mark.m5_t4
def test_rrf_ties_and_single_ranking(impl):
    assert [i for i, _ in impl.reciprocal_rank_fusion([["x", "y"], ["y", "x"]], k=1)] == ["x", "y"]
    assert [i for i, _ in impl.reciprocal_rank_fusion([["p", "q", "r"]])] == ["p", "q", "r"]
    assert impl.reciprocal_rank_fusion([]) == []


# -- Task 5.5: recall@k, MRR ----------------------------------------------------------------------
@pytest.mark.m5_t5
def test_recall_and_mrr(impl):
    ranked = ["d1", "d2", "d3", "d4", "d5"]
    assert impl.recall_at_k(ranked, {"d2", "d5", "d9"}, 2) == pytest.approx(1 / 3)
    assert impl.recall_at_k(ranked, {"d2", "d5", "d9"}, 5) == pytest.approx(2 / 3)
    assert impl.recall_at_k(ranked, set(), 5) == 0.0
    assert impl.mrr_at_k(ranked, {"d3"}, 10) == pytest.approx(1 / 3)
    assert impl.mrr_at_k(ranked, {"d3"}, 2) == 0.0
    assert impl.mrr_at_k(ranked, {"d4", "d2"}, 5) == pytest.approx(1 / 2)


@pytest.mark.m5_t5
def test_recall_and_mrr_match_the_reference(impl):
    from month5_rag import metrics

    rng = np.random.default_rng(1)
    for _ in range(50):
        ranked = [f"d{i}" for i in rng.permutation(30)[:15]]
        relevant = {f"d{i}" for i in rng.choice(30, size=int(rng.integers(0, 4)), replace=False)}
        k = int(rng.integers(1, 16))
        assert impl.recall_at_k(ranked, relevant, k) == pytest.approx(metrics.recall_at_k(ranked, relevant, k))
        assert impl.mrr_at_k(ranked, relevant, k) == pytest.approx(metrics.mrr_at_k(ranked, relevant, k))


def test_ndcg_matches_scikit_learn():
    from sklearn.metrics import ndcg_score

    from month5_rag.metrics import ndcg_at_k

    rng = np.random.default_rng(2)
    for _ in range(30):
        n = 12
        relevant_ids = set(rng.choice(n, size=int(rng.integers(1, 4)), replace=False).tolist())
        order = rng.permutation(n)
        ranked = [str(i) for i in order]
        truth = np.asarray([[1.0 if i in relevant_ids else 0.0 for i in range(n)]])
        predicted = np.zeros((1, n))
        predicted[0, order] = np.arange(n, 0, -1)  # higher score = ranked earlier
        assert ndcg_at_k(ranked, {str(i) for i in relevant_ids}, 10) == pytest.approx(
            ndcg_score(truth, predicted, k=10), rel=1e-9)
