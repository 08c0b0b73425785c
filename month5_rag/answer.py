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

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from month5_rag.chunking import split_sentences
from month5_rag.retrieval import Hit, Retriever, cosine_top_k

NOT_FOUND = "Not found in the documents."
# Calibrated on the generated set (python -m month5_rag eval --set generated --calibrate true):
# the highest threshold keeping false abstention on answerable questions <= 5%. See RESULTS.md.
DEFAULT_THRESHOLD = 0.45
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
    citations: list[str] = field(default_factory=list)  # "[handbook.pdf p.3]"
    evidence: list[Evidence] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    generated: str = ""  # the chat model's own words, before the citations were added

    def as_dict(self) -> dict:
        return {"question": self.question, "text": self.text, "found": self.found,
                "confidence": round(self.confidence, 4), "citations": self.citations,
                "evidence": [asdict(e) for e in self.evidence], "hits": [h.as_dict() for h in self.hits],
                "generated": self.generated}

    def render(self) -> str:
        lines = [self.text]
        for e in self.evidence:
            lines.append(f'  > "{e.sentence}" [{e.locator}]')
        return "\n".join(lines)


def candidate_sentences(hits: Sequence[Hit]) -> list[tuple[Hit, int, int]]:
    """(hit, start, end) for each sentence of each hit; offsets inside the hit's text."""
    return [(h, s, e) for h in hits for s, e in split_sentences(h.text)]


def select_evidence(question_vector: np.ndarray, hits: Sequence[Hit], embedder, max_sentences: int = 2,
                    margin: float = 0.05) -> list[Evidence]:
    """The best sentence, and a second one if it scores within `margin` of the best."""
    candidates = candidate_sentences(hits)
    if not candidates:
        return []
    vectors = embedder.embed_passages([h.text[s:e] for h, s, e in candidates])
    scores, order = cosine_top_k(question_vector, vectors, max_sentences)
    chosen = []
    for score, i in zip(scores, order):
        if chosen and score < scores[0] - margin:
            break
        hit, s, e = candidates[i]
        chosen.append(Evidence(" ".join(hit.text[s:e].split()), hit.locator, hit.file, hit.page, hit.heading,
                               hit.paragraph, hit.start + s, hit.start + e, hit.id, float(score)))
    return chosen


def evidence_prompt(question: str, evidence: Sequence[Evidence]) -> str:
    quoted = "\n".join(f"- {e.sentence}" for e in evidence)
    return f"Evidence:\n{quoted}\n\nQuestion: {question}"


def calibrate_threshold(answerable: Sequence[float], unanswerable: Sequence[float],
                        max_false_abstention: float = 0.05) -> float:
    """The highest threshold (abstain when confidence < t) whose false abstention on answerable
    questions stays <= max_false_abstention: it declines as many unanswerable ones as that allows."""
    a = np.sort(np.asarray(answerable, dtype=float))
    if a.size == 0:
        raise ValueError("no answerable questions to calibrate on")
    allowed = int(np.floor(max_false_abstention * a.size))  # answerable questions we may decline
    # abstaining below a[allowed] declines exactly the `allowed` lowest; midway to the one below is safer
    upper = a[allowed]
    lower = a[allowed - 1] if allowed > 0 else upper - 0.02
    return float((upper + lower) / 2)


class Answerer:
    """Question -> `Answer`, for one retriever and (optionally) one chat backend."""

    def __init__(self, retriever: Retriever, backend=None, threshold: float = DEFAULT_THRESHOLD, k: int = 5,
                 mode: str = "hybrid", max_new_tokens: int = 48) -> None:
        self.retriever, self.backend, self.threshold = retriever, backend, threshold
        self.k, self.mode, self.max_new_tokens = k, mode, max_new_tokens

    def prepare(self, question: str, collection: str, files=None) -> Answer:
        """Retrieval, evidence and the abstention decision; no generation."""
        embedder = self.retriever.embedder
        vector = embedder.embed_queries([question])[0]
        hits = self.retriever.search(question, collection, self.k, self.mode, files)
        evidence = select_evidence(vector, hits[:3], embedder)
        confidence = evidence[0].score if evidence else 0.0
        if confidence < self.threshold:
            return Answer(question, NOT_FOUND, False, confidence, hits=hits)
        citations = list(dict.fromkeys(f"[{e.locator}]" for e in evidence))
        text = " ".join(e.sentence for e in evidence) + " " + " ".join(citations)
        return Answer(question, text, True, confidence, citations, evidence, hits)

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
