"""Measure retrieval and answers on the two labelled sets: the generated one and the hand-written one.

    python -m month5_rag eval                                   # both sets, FAISS flat, extractive answers
    python -m month5_rag eval --set handwritten --store chroma
    python -m month5_rag eval --set generated --calibrate true  # the abstention threshold, fitted here
    python -m month5_rag eval --generate true --limit 10        # + the chat model's wording, timed

Each set is ingested into a fresh store in a temporary folder. For each answerable question, a
retrieved chunk is relevant when it is from the labelled file, on the labelled page (PDF) or holds
the labelled paragraph (DOCX), and contains the answer span; all relevant chunks count as one item
(overlapping chunks may both hold the fact), so recall@k is the share of questions whose fact is in
the top k. Reported per retriever (dense, BM25, hybrid): recall@1, recall@5, MRR@10, nDCG@10. For
answers: citation precision (cited chunks that are relevant), answer contains the fact, abstention
on unanswerable questions and false abstention on answerable ones.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from month5_rag.answer import DEFAULT_THRESHOLD, Answerer, calibrate_threshold
from month5_rag.corpus import EvalSet, Question, generated_set, handwritten_set
from month5_rag.metrics import mrr_at_k, ndcg_at_k, recall_at_k
from month5_rag.retrieval import MODES, Hit
from month5_rag.stores import STORES

RELEVANT = "<fact>"


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def is_relevant(hit: Hit, q: Question) -> bool:
    if not q.answerable or hit.name != q.file or _norm(q.answer) not in _norm(hit.text):
        return False
    if q.page is not None and hit.page != q.page:
        return False
    if q.paragraph is not None and hit.paragraph is not None:
        return hit.paragraph <= q.paragraph <= (hit.paragraph_end or hit.paragraph)
    return True


def ranked_items(hits: list[Hit], q: Question) -> list[str]:
    """The ranking as items: every relevant chunk is the one item RELEVANT, others their ids."""
    return list(dict.fromkeys(RELEVANT if is_relevant(h, q) else h.id for h in hits))


@dataclass
class EvalConfig:
    set: str = field(default="both", metadata={"help": "which labelled set", "choices": ("generated", "handwritten",
                                                                                         "both")})
    store: str = field(default="faiss", metadata={"help": "vector store for the run", "choices": STORES})
    embedding_model: str = field(default="all-MiniLM-L6-v2", metadata={"help": "embedding model"})
    chunk_tokens: int = field(default=128, metadata={"help": "chunk budget, tokens"})
    overlap_tokens: int = field(default=32, metadata={"help": "chunk overlap, tokens"})
    threshold: float = field(default=DEFAULT_THRESHOLD, metadata={"help": "abstention threshold"})
    calibrate: bool = field(default=False, metadata={"help": "fit the abstention threshold on the generated set "
                                                             "and report every set at it"})
    generate: bool = field(default=False, metadata={"help": "also word answers with the chat model (slow)"})
    limit: int = field(default=0, metadata={"help": "questions per set (0 = all); with --generate, answers generated"})
    seed: int = field(default=0, metadata={"help": "generated set's seed"})
    out: str = field(default="runs/month5/eval.json", metadata={"help": "where the results go (JSON)"})
    progress: bool = field(default=True, metadata={"help": "progress bars"})

    def __post_init__(self) -> None:
        if self.limit < 0:
            raise ValueError("--limit must be >= 0")


def evaluate_retrieval(rag, collection: str, questions: list[Question], progress: bool = False) -> dict:
    rows = {m: {"recall@1": [], "recall@5": [], "mrr@10": [], "ndcg@10": []} for m in MODES}
    for q in tqdm([q for q in questions if q.answerable], desc="retrieval", disable=not progress, leave=False):
        for mode in MODES:
            ranked = ranked_items(rag.search(q.question, collection, 10, mode), q)
            rel = {RELEVANT}
            r = rows[mode]
            r["recall@1"].append(recall_at_k(ranked, rel, 1))
            r["recall@5"].append(recall_at_k(ranked, rel, 5))
            r["mrr@10"].append(mrr_at_k(ranked, rel, 10))
            r["ndcg@10"].append(ndcg_at_k(ranked, rel, 10))
    return {m: {k: float(np.mean(v)) if v else 0.0 for k, v in r.items()} for m, r in rows.items()}


def evaluate_answers(answerer: Answerer, collection: str, questions: list[Question], progress: bool = False) -> dict:
    """Extractive answers (the evidence is the answer) at the answerer's threshold, and every confidence."""
    details = []
    for q in tqdm(questions, desc="answers", disable=not progress, leave=False):
        a = answerer.prepare(q.question, collection)
        hits = {h.id: h for h in a.hits}
        cited_ok = [is_relevant(hits[e.chunk_id], q) for e in a.evidence] if a.found else []
        details.append({"id": q.id, "answerable": q.answerable, "found": a.found, "confidence": a.confidence,
                        "cited": len(cited_ok), "cited_ok": sum(cited_ok),
                        "has_fact": bool(q.answerable and a.found and _norm(q.answer) in _norm(a.text)),
                        "citations": a.citations})
    return {"summary": answer_summary(details, answerer.threshold), "details": details}


def answer_summary(details: list[dict], threshold: float) -> dict:
    answerable = [d for d in details if d["answerable"]]
    unanswerable = [d for d in details if not d["answerable"]]
    found = [d for d in answerable if d["confidence"] >= threshold]
    cited = sum(d["cited"] for d in found)
    return {
        "threshold": threshold,
        "citation_precision": sum(d["cited_ok"] for d in found) / cited if cited else 0.0,
        "answer_has_fact": sum(d["has_fact"] for d in found) / len(answerable) if answerable else 0.0,
        "abstention": sum(d["confidence"] < threshold for d in unanswerable) / len(unanswerable)
        if unanswerable else 0.0,
        "false_abstention": sum(d["confidence"] < threshold for d in answerable) / len(answerable)
        if answerable else 0.0,
        "answerable": len(answerable), "unanswerable": len(unanswerable),
    }


def evaluate_set(es: EvalSet, cfg: EvalConfig, store_dir: Path, embedder=None) -> dict:
    from month5_rag.chunking import ChunkConfig
    from month5_rag.rag import Rag, RagConfig

    rag = Rag(RagConfig(store=cfg.store, store_dir=str(store_dir), collection=f"eval-{es.name}",
                        embedding_model=cfg.embedding_model, progress=cfg.progress), embedder=embedder)
    start = time.perf_counter()
    report = rag.ingest([es.folder], chunking=ChunkConfig(cfg.chunk_tokens, cfg.overlap_tokens))
    ingest_s = time.perf_counter() - start
    questions = es.questions[:cfg.limit] if cfg.limit and not cfg.generate else es.questions
    collection = rag.cfg.collection
    start = time.perf_counter()
    retrieval = evaluate_retrieval(rag, collection, questions, cfg.progress)
    per_query_ms = 1000 * (time.perf_counter() - start) / max(1, 3 * sum(q.answerable for q in questions))
    answers = evaluate_answers(rag.answerer(), collection, questions, cfg.progress)
    result = {"set": es.name, "files": len(report.files), "chunks": report.chunks, "ingest_s": round(ingest_s, 2),
              "questions": len(questions), "retrieval": retrieval, "answers": answers["summary"],
              "retrieval_ms_per_query": round(per_query_ms, 1), "details": answers["details"]}
    if cfg.generate:
        result["generated"] = evaluate_generation(rag, collection, questions, cfg)
    return result


def evaluate_generation(rag, collection: str, questions: list[Question], cfg: EvalConfig) -> dict:
    """The chat model words the answers of the first `limit` answerable questions; end-to-end time each."""
    from month5_rag.rag import AnswerConfig

    answerer = rag.answerer(AnswerConfig(generate=True, threshold=cfg.threshold))
    chosen = [q for q in questions if q.answerable][:cfg.limit or None]
    rows = []
    for q in tqdm(chosen, desc="generate", disable=not cfg.progress, leave=False):
        start = time.perf_counter()
        a = answerer.answer(q.question, collection)
        rows.append({"id": q.id, "seconds": time.perf_counter() - start, "found": a.found,
                     "generated": a.generated, "fact_in_generated": _norm(q.answer) in _norm(a.generated)})
    seconds = [r["seconds"] for r in rows]
    return {"n": len(rows), "fact_in_generated": sum(r["fact_in_generated"] for r in rows) / max(1, len(rows)),
            "answer_s_p50": float(np.percentile(seconds, 50)) if seconds else 0.0,
            "answer_s_p95": float(np.percentile(seconds, 95)) if seconds else 0.0, "rows": rows}


def table(results: list[dict]) -> str:
    lines = ["| set | retriever | recall@1 | recall@5 | MRR@10 | nDCG@10 |", "|---|---|---|---|---|---|"]
    for r in results:
        for mode in MODES:
            m = r["retrieval"][mode]
            lines.append(f"| {r['set']} | {mode} | {m['recall@1']:.3f} | {m['recall@5']:.3f} | {m['mrr@10']:.3f} | "
                         f"{m['ndcg@10']:.3f} |")
    lines += ["", "| set | questions (answerable / not) | citation precision | answer has the fact | abstention "
                  "(unanswerable) | false abstention | threshold |", "|---|---|---|---|---|---|---|"]
    for r in results:
        a = r["answers"]
        lines.append(f"| {r['set']} | {a['answerable']} / {a['unanswerable']} | {a['citation_precision']:.3f} | "
                     f"{a['answer_has_fact']:.3f} | {a['abstention']:.3f} | {a['false_abstention']:.3f} | "
                     f"{a['threshold']:.3f} |")
    for r in results:
        if "generated" in r:
            g = r["generated"]
            lines.append(f"\n{r['set']}: chat model wording, {g['n']} answers: fact in the generated sentence "
                         f"{g['fact_in_generated']:.2f}; end-to-end answer time p50 {g['answer_s_p50']:.2f} s, "
                         f"p95 {g['answer_s_p95']:.2f} s")
    return "\n".join(lines)


def run(cfg: EvalConfig, embedder=None) -> list[dict]:
    results = []
    with tempfile.TemporaryDirectory(prefix="month5-eval-") as tmp:
        sets = []
        if cfg.set in ("generated", "both"):
            sets.append(generated_set(Path(tmp) / "generated", cfg.seed))
        if cfg.set in ("handwritten", "both"):
            sets.append(handwritten_set())
        for es in sets:
            results.append(evaluate_set(es, cfg, Path(tmp) / f"store-{es.name}", embedder))
    if cfg.calibrate:
        # fitted on the generated set (when it ran), applied to every set: the hand-written one is the test
        fit = [r for r in results if r["set"] == "generated"] or results
        details = [d for r in fit for d in r["details"]]
        threshold = calibrate_threshold([d["confidence"] for d in details if d["answerable"]],
                                        [d["confidence"] for d in details if not d["answerable"]])
        for r in results:
            r["answers"] = {**answer_summary(r["details"], threshold), "calibrated_on": fit[0]["set"]}
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from shared.config import add_config_arguments

    add_config_arguments(parser, EvalConfig)


def main(args: argparse.Namespace) -> None:
    from shared.config import config_from_args
    from shared.runtime import set_threads

    cfg = config_from_args(EvalConfig, args)
    threads = set_threads()
    start = time.perf_counter()
    results = run(cfg)
    print(table(results))
    print(f"\n[eval] {time.perf_counter() - start:.0f} s, {threads} thread(s), store {cfg.store}")
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"config": asdict(cfg), "results": results}, indent=1) + "\n")
    print(f"[eval] wrote {out}")
