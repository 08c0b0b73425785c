"""Chunks that respect sentence and heading boundaries, within a token budget, with overlap.

A chunk never crosses a section (a PDF page, or the body of one heading), so its locator is one
page or one heading, and it is a contiguous span of the source: `text == source[start:end]`.
Inside a section, sentences are packed greedily up to `chunk_tokens` tokens (the embedding model's
own tokenizer counts them); the next chunk starts with the last sentences of the previous one, up to
`overlap_tokens`, so a fact cut at a boundary is whole in one of the two. A sentence longer than the
budget is cut at word boundaries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby

from month5_rag.documents import PARAGRAPH_BREAK, Passage

# A sentence ends at . ! ? (optionally followed by a quote or bracket) before whitespace and an
# upper-case letter, digit or opening quote; or at a blank line. A single line break is not an end:
# PDF text breaks lines inside sentences.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[A-Z0-9\"'(\[])|\n\s*\n\s*")
_ABBREVIATION = re.compile(r"(?:^|[\s(])(?:e\.g|i\.e|etc|Mr|Mrs|Ms|Dr|No|vs|approx|Inc|Ltd|St|Fig|p|pp)\.$")


@dataclass(frozen=True)
class ChunkConfig:
    chunk_tokens: int = field(default=128, metadata={
        "help": "token budget of a chunk (the embedding model's tokens); measured in RESULTS.md"})
    overlap_tokens: int = field(default=32, metadata={
        "help": "tokens of whole sentences repeated from the end of the previous chunk"})

    def __post_init__(self) -> None:
        if self.chunk_tokens < 16:
            raise ValueError(f"--chunk-tokens must be at least 16 (got {self.chunk_tokens})")
        if not 0 <= self.overlap_tokens < self.chunk_tokens:
            raise ValueError(f"--overlap-tokens must be >= 0 and below --chunk-tokens (got {self.overlap_tokens})")


@dataclass
class Chunk:
    text: str
    start: int  # offsets into the page text (PDF) or the file text (others)
    end: int
    page: int | None
    heading: str
    paragraph: int | None  # first paragraph of the chunk
    paragraph_end: int | None  # last paragraph
    index: int = 0  # position in the file


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences of `text`, whitespace trimmed."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        before = text[start:match.start()]
        if _ABBREVIATION.search(before) and "\n\n" not in match.group():
            continue
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    trimmed = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            trimmed.append((s, e))
    return trimmed


def chunk_sentences(lengths: list[int], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Pack sentences of the given token lengths into chunks; returns (first, stop) index ranges.

    Greedy: a chunk takes sentences while their total stays <= budget (a sentence longer than the
    budget is a chunk alone). The next chunk starts with the longest run of the previous chunk's
    last sentences whose total is <= overlap and leaves room, within the budget, for the next new
    sentence; and always at least one sentence later than the previous chunk started. So every
    chunk adds a new sentence and the loop ends. Every sentence is in some chunk, in order; the
    last chunk ends at len(lengths).
    """
    ranges: list[tuple[int, int]] = []
    first, n = 0, len(lengths)
    while first < n:
        stop, total = first, 0
        while stop < n and (stop == first or total + lengths[stop] <= budget):
            total += lengths[stop]
            stop += 1
        ranges.append((first, stop))
        if stop == n:
            break
        back, carried = stop, 0
        while back - 1 > first and carried + lengths[back - 1] <= min(overlap, budget - lengths[stop]):
            back -= 1
            carried += lengths[back]
        first = back
    return ranges


def _word_pieces(text: str, start: int, end: int, n_tokens: int, budget: int) -> list[tuple[int, int]]:
    """Cut an over-long sentence into about-equal pieces at word boundaries."""
    pieces = -(-n_tokens * 5 // (budget * 4))  # 25% slack: pieces tokenize a little longer than their share
    words = [(m.start() + start, m.end() + start) for m in re.finditer(r"\S+", text[start:end])]
    per = max(1, -(-len(words) // pieces))
    return [(words[i][0], words[min(i + per, len(words)) - 1][1]) for i in range(0, len(words), per)]


def chunk_section(passages: list[Passage], count_tokens: Callable[[list[str]], list[int]],
                  cfg: ChunkConfig) -> Iterator[Chunk]:
    """Chunks of one section: its passages are consecutive paragraphs (or one page)."""
    text = PARAGRAPH_BREAK.join(p.text for p in passages)
    base = passages[0].offset
    # where each passage starts in `text`, to name a chunk's first and last paragraph
    starts, pos = [], 0
    for p in passages:
        starts.append(pos)
        pos += len(p.text) + len(PARAGRAPH_BREAK)
    # sentences never cross a paragraph: a heading line without a full stop is a sentence of its own
    spans = [(start + s, start + e) for p, start in zip(passages, starts) for s, e in split_sentences(p.text)]
    lengths = count_tokens([text[s:e] for s, e in spans]) if spans else []
    fitted: list[tuple[int, int]] = []
    fitted_lengths: list[int] = []
    for (s, e), n in zip(spans, lengths):
        if n <= cfg.chunk_tokens:
            fitted.append((s, e))
            fitted_lengths.append(n)
        else:
            pieces = _word_pieces(text, s, e, n, cfg.chunk_tokens)
            fitted += pieces
            fitted_lengths += count_tokens([text[a:b] for a, b in pieces])
    for first, stop in chunk_sentences(fitted_lengths, cfg.chunk_tokens, cfg.overlap_tokens):
        s, e = fitted[first][0], fitted[stop - 1][1]
        p_first = _passage_at(starts, s)
        p_last = _passage_at(starts, e - 1)
        yield Chunk(text[s:e], base + s, base + e, passages[0].page, passages[p_first].heading,
                    passages[p_first].paragraph, passages[p_last].paragraph)


def _passage_at(starts: list[int], pos: int) -> int:
    import bisect

    return bisect.bisect_right(starts, pos) - 1


def chunk_passages(passages: Iterable[Passage], count_tokens: Callable[[list[str]], list[int]],
                   cfg: ChunkConfig) -> Iterator[Chunk]:
    """Chunks of a whole file, section by section, numbered in order (streamed: one section in memory)."""
    index = 0
    for _, group in groupby(passages, key=lambda p: p.section):
        for chunk in chunk_section(list(group), count_tokens, cfg):
            chunk.index = index
            index += 1
            yield chunk
