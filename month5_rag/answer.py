"""Answers grounded in retrieved chunks: extractive evidence first, then (optionally) the chat model's
sentence, with citations that point at the chunk holding the evidence, or "Not found in the documents."

1. Retrieve (hybrid by default) the top chunks of the collection.
2. Split them into sentences; score each against the question (cosine of embeddings, the graded
   `cosine_top_k`). The best one or two are the evidence, quoted under the answer, each with the
   locator of its chunk and its character offsets in the source, so a user can check them even when
   a 135M model paraphrases badly.
3. Abstain when the best sentence's similarity is below a threshold calibrated on the generated set
   (`calibrate_threshold`; the default and how it was measured are in RESULTS.md).
4. With a chat backend (month 2's `Backend`: the fast decoder, llama.cpp, an OpenAI server), the
   model writes one sentence from the evidence alone; without one the answer is the evidence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from month5_rag.chunking import split_sentences
from month5_rag.documents import PARAGRAPH_BREAK
from month5_rag.retrieval import Hit, Retriever, cosine_top_k

NOT_FOUND = "Not found in the documents."
# Calibrated on the generated set only (python -m month5_rag eval --set generated --calibrate true),
# then checked on the hand-written set; see calibrate_threshold and RESULTS.md.
DEFAULT_THRESHOLD = 0.406
EVIDENCE_CHUNKS = 3  # evidence sentences come from the best 3 chunks (that name what the question names)
SYSTEM = ("You answer questions about company documents using only the evidence given. "
          "Answer in one short sentence.")


@dataclass
class Evidence:
    sentence: str
    locator: str
    file: str
    page: int | None
    heading: str
    paragraph: int | None
    start: int  # offsets of the sentence in the source (page text for PDFs, file text otherwise)
    end: int
    chunk_id: str
    score: float


@dataclass
class Answer:
    question: str
    text: str
    found: bool
    confidence: float
    reason: str = ""  # why it abstained
    citations: list[str] = field(default_factory=list)  # "[handbook.pdf p.3]"
    evidence: list[Evidence] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    generated: str = ""  # the chat model's own words, before the citations were added

    def as_dict(self) -> dict:
        return {"question": self.question, "text": self.text, "found": self.found,
                "confidence": round(self.confidence, 4), "reason": self.reason, "citations": self.citations,
                "evidence": [asdict(e) for e in self.evidence], "hits": [h.as_dict() for h in self.hits],
                "generated": self.generated}

    def render(self) -> str:
        lines = [self.text]
        for e in self.evidence:
            lines.append(f'  > "{e.sentence}" [{e.locator}]')
        return "\n".join(lines)


_NAME = re.compile(r"(?<![\w-])[A-Z][a-z]+(?:[- ][A-Z][a-z]+)*")


def question_names(question: str) -> list[str]:
    """Capitalised words that do not start a sentence: the places, products and people a question names."""
    names = []
    for m in _NAME.finditer(question):
        before = question[:m.start()].rstrip()
        if before and before[-1] not in ".?!:\"'(":
            names.append(m.group())
    return list(dict.fromkeys(names))


def candidate_sentences(hits: Sequence[Hit]) -> list[tuple[Hit, int, int]]:
    """(hit, start, end) for each sentence of each hit; offsets inside the hit's text."""
    return [(h, s, e) for h in hits for s, e in split_sentences(h.text)]


def _extend(hit: Hit, start: int, end: int) -> tuple[int, int]:
    """A question (an FAQ's) or a short heading-like line says little alone: add the sentence after it."""
    text = hit.text[start:end]
    if text.endswith("?") or len(text.split()) < 5:
        following = [(s, e) for s, e in split_sentences(hit.text) if s >= end]
        if following:
            return start, following[0][1]
    return start, end


def select_evidence(question_vector: np.ndarray, hits: Sequence[Hit], embedder, chunk_vectors: np.ndarray,
                    max_sentences: int = 2, margin: float = 0.05, weight: float = 0.5) -> list[Evidence]:
    """Score each sentence by `weight` x its cosine with the question plus (1 - weight) x its chunk's
    (the chunk embedding knows the title, heading and neighbouring sentences); keep the best, and a
    second one scoring within `margin` of it."""
    candidates = candidate_sentences(hits)
    if not candidates:
        return []
    vectors = embedder.embed_passages([h.text[s:e] for h, s, e in candidates])
    sentence_scores, order = cosine_top_k(question_vector, vectors, len(candidates))
    chunk_score = dict(zip((h.id for h in hits), chunk_vectors @ question_vector))
    scores = [weight * float(sc) + (1 - weight) * float(chunk_score[candidates[i][0].id])
              for sc, i in zip(sentence_scores, order)]
    ranked = sorted(zip(scores, order), key=lambda t: -t[0])
    chosen: list[Evidence] = []
    for score, i in ranked[:max_sentences]:
        if chosen and score < chosen[0].score - margin:
            break
        hit, s, e = candidates[i]
        s, e = _extend(hit, s, e)
        if any(c.chunk_id == hit.id and c.start <= hit.start + s < c.end for c in chosen):
            continue  # already quoted with the sentence before it
        paragraph = hit.paragraph + hit.text.count(PARAGRAPH_BREAK, 0, s) if hit.paragraph is not None else None
        locator = hit.locator if paragraph is None else hit.locator.rsplit(" ¶", 1)[0] + f" ¶{paragraph}"
        chosen.append(Evidence(" ".join(hit.text[s:e].split()), locator, hit.file, hit.page, hit.heading,
                               paragraph, hit.start + s, hit.start + e, hit.id, score))
    return chosen


def evidence_prompt(question: str, evidence: Sequence[Evidence]) -> str:
    quoted = "\n".join(f"- {e.sentence}" for e in evidence)
    return f"Evidence:\n{quoted}\n\nQuestion: {question}"


def calibrate_threshold(answerable: Sequence[float], unanswerable: Sequence[float], slack: float = 0.05) -> float:
    """A threshold (abstain when confidence < t) fitted on labelled confidences.

    Youden's J (share of unanswerable declined + share of answerable kept - 1) is constant between
    consecutive observed confidences. Among the gaps whose J is within `slack` of the best, take the
    middle of the widest: a wide margin is what lets the threshold carry over to questions phrased
    differently from the calibration set (measured on the hand-written set, RESULTS.md)."""
    a, u = np.asarray(answerable, dtype=float), np.asarray(unanswerable, dtype=float)
    if a.size == 0 or u.size == 0:
        raise ValueError("calibration needs answerable and unanswerable questions")
    points = np.unique(np.concatenate([a, u]))
    gaps = [(lo, hi) for lo, hi in zip(points[:-1], points[1:])]
    if not gaps:
        return float(points[0])
    j = np.asarray([(u < (lo + hi) / 2).mean() + (a >= (lo + hi) / 2).mean() - 1 for lo, hi in gaps])
    near_best = [g for g, score in zip(gaps, j) if score >= j.max() - slack]
    lo, hi = max(near_best, key=lambda g: g[1] - g[0])
    return float((lo + hi) / 2)


def _contains(hit: Hit, name: str) -> bool:
    haystack = f"{hit.name} {hit.heading} {hit.text}".lower()
    return name.lower() in haystack


class Answerer:
    """Question -> `Answer`, for one retriever and (optionally) one chat backend."""

    def __init__(self, retriever: Retriever, backend=None, threshold: float = DEFAULT_THRESHOLD, k: int = 5,
                 mode: str = "hybrid", max_new_tokens: int = 48) -> None:
        self.retriever, self.backend, self.threshold = retriever, backend, threshold
        self.k, self.mode, self.max_new_tokens = k, mode, max_new_tokens

    def prepare(self, question: str, collection: str, files=None) -> Answer:
        """Retrieval, evidence and the abstention decision; no generation.

        Two rules decline: the best evidence sentence is less similar to the question than the
        threshold, or the question names something (a capitalised word: a city, a product, a person)
        that none of the top chunks contains: the evidence would be about something else."""
        embedder = self.retriever.embedder
        vector = embedder.embed_queries([question])[0]
        hits = self.retriever.search(question, collection, self.k, self.mode, files)
        names = question_names(question)
        pool = [h for h in hits if all(_contains(h, n) for n in names)][:EVIDENCE_CHUNKS]
        if names and not pool:
            return Answer(question, NOT_FOUND, False, 0.0, f"no retrieved chunk mentions {', '.join(names)}",
                          hits=hits)
        chunk_vectors = self.retriever.store.embeddings(collection, [h.id for h in pool]) if pool else None
        evidence = select_evidence(vector, pool, embedder, chunk_vectors)
        confidence = evidence[0].score if evidence else 0.0
        if confidence < self.threshold:
            return Answer(question, NOT_FOUND, False, confidence,
                          f"best evidence similarity {confidence:.2f} < threshold {self.threshold:.2f}", hits=hits)
        citations = list(dict.fromkeys(f"[{e.locator}]" for e in evidence))
        text = " ".join(e.sentence for e in evidence) + " " + " ".join(citations)
        return Answer(question, text, True, confidence, "", citations, evidence, hits)

    def messages(self, answer: Answer, history: Sequence[dict] = ()) -> list[dict]:
        return [{"role": "system", "content": SYSTEM}, *history,
                {"role": "user", "content": evidence_prompt(answer.question, answer.evidence)}]

    def stream(self, answer: Answer, history: Sequence[dict] = ()) -> Iterator[str]:
        """The chat model's answer from the evidence, piece by piece; then the citations."""
        from month2_llm_core.chat import Sampling

        if not answer.found or self.backend is None:
            yield answer.text
            return
        pieces = []
        for piece in self.backend.stream(self.messages(answer, history), Sampling(self.max_new_tokens, 0.0)):
            pieces.append(piece)
            yield piece
        answer.generated = "".join(pieces).strip()
        answer.text = f"{answer.generated} {' '.join(answer.citations)}"
        yield " " + " ".join(answer.citations)

    def answer(self, question: str, collection: str, files=None) -> Answer:
        answer = self.prepare(question, collection, files)
        for _ in self.stream(answer):
            pass
        return answer
