"""Month 5 benchmark: retrieval latency at 1k, 10k and 100k chunks, Chroma vs FAISS flat vs FAISS HNSW.

The vectors: 2,000 real all-MiniLM-L6-v2 embeddings of policy-style paragraphs (corpus.py's filler
templates), grown to N by adding small noise to copies (so the collection has the clustered structure
of real text, not uniform random vectors, HNSW's worst case). Queries: 100 real question embeddings
(both labelled sets). Timed: the store's query call alone (top 10), the question already embedded;
each store in turn, query by query, in one process. HNSW's recall@10 is measured against flat's exact
answers. The embedding of one question and the end-to-end answer are timed separately (the answer
with the chat model: `python -m month5_rag eval --generate true --limit 10`).

    OMP_NUM_THREADS=1 python benchmarks/month5_query.py
    OMP_NUM_THREADS=1 python benchmarks/month5_query.py --sizes 1000 10000

Writes runs/bench_month5/query.json.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path("runs/bench_month5")


def base_vectors(embedder, n: int = 2000) -> np.ndarray:
    from month5_rag.corpus import _filler

    rng = random.Random(0)
    topics = ["travel", "security", "leave", "finance", "procurement", "facilities", "onboarding", "privacy"]
    texts = [_filler(rng, rng.choice(topics), rng.choice(["policy", "handbook", "standard"]), 3) for _ in range(n)]
    return embedder.embed_passages(texts)


def grow(base: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = base[rng.integers(0, len(base), n)]
    noisy = picks + rng.normal(scale=0.04, size=picks.shape).astype(np.float32)
    return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)


def fill(store, vectors: np.ndarray) -> float:
    ids = [f"c{i}" for i in range(len(vectors))]
    start = time.perf_counter()
    for i in range(0, len(ids), 5000):
        j = i + 5000
        store.add("bench", ids[i:j], vectors[i:j], [f"chunk {k}" for k in range(i, min(j, len(ids)))],
                  [{"file": f"f{k % 50}.pdf", "name": f"f{k % 50}.pdf", "page": 1} for k in range(i, min(j, len(ids)))])
    store.flush()
    return time.perf_counter() - start


def latencies(store, queries: np.ndarray, k: int = 10) -> tuple[list[float], list[list[str]]]:
    times, results = [], []
    store.query("bench", queries[0], k)  # warm-up
    for q in queries:
        start = time.perf_counter()
        hits = store.query("bench", q, k)
        times.append(1000 * (time.perf_counter() - start))
        results.append([h.id for h in hits])
    return times, results


def main() -> None:
    from month5_rag.corpus import generated_set, handwritten_set
    from month5_rag.embeddings import Embedder
    from month5_rag.stores import ChromaStore, FaissStore
    from shared.runtime import set_threads

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    args = parser.parse_args()
    threads = set_threads()
    embedder = Embedder()
    base = base_vectors(embedder)
    with tempfile.TemporaryDirectory() as tmp:
        questions = [q.question for q in generated_set(Path(tmp) / "gen").questions + handwritten_set().questions]
    queries = embedder.embed_queries(questions[:100])
    start = time.perf_counter()
    for q in questions[:50]:
        embedder.embed_queries([q])
    embed_ms = 1000 * (time.perf_counter() - start) / 50
    print(f"[query] {threads} thread(s); embedding one question: {embed_ms:.1f} ms (not in the figures below)")
    rows = []
    for n in args.sizes:
        vectors = grow(base, n)
        with tempfile.TemporaryDirectory(prefix="month5-query-") as tmp:
            stores = {"chroma": ChromaStore(Path(tmp) / "chroma"), "faiss-flat": FaissStore(Path(tmp) / "faiss"),
                      "faiss-hnsw": FaissStore(Path(tmp) / "faiss", "hnsw")}
            exact = None
            for name, store in stores.items():
                if name == "faiss-hnsw":
                    start = time.perf_counter()
                    store._col("bench")  # built from the flat store's SQLite: HNSW construction timed
                    fill_s = time.perf_counter() - start
                else:
                    fill_s = fill(store, vectors)
                times, results = latencies(store, queries)
                if name == "faiss-flat":
                    exact = results
                recall = None
                if exact is not None and name != "faiss-flat":
                    recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(results, exact)]))
                row = {"chunks": n, "store": name, "p50_ms": float(np.percentile(times, 50)),
                       "p95_ms": float(np.percentile(times, 95)), "build_s": fill_s, "recall@10_vs_flat": recall}
                rows.append(row)
                print(f"{n:>7} chunks {name:<11} p50 {row['p50_ms']:7.2f} ms  p95 {row['p95_ms']:7.2f} ms  "
                      f"build {fill_s:6.1f} s" + (f"  recall@10 vs flat {recall:.3f}" if recall is not None else ""),
                      flush=True)
            # chroma ran before flat: its recall against flat's exact answers
            chroma_times, chroma_results = latencies(stores["chroma"], queries)
            rows[-3]["recall@10_vs_flat"] = float(np.mean([len(set(a) & set(b)) / 10
                                                           for a, b in zip(chroma_results, exact)]))
            print(f"{n:>7} chunks chroma      recall@10 vs flat {rows[-3]['recall@10_vs_flat']:.3f}", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "query.json").write_text(json.dumps({"threads": threads, "embed_query_ms": embed_ms, "rows": rows},
                                               indent=1) + "\n")
    print(f"wrote {OUT / 'query.json'}")


if __name__ == "__main__":
    main()
