"""Tokenizers for month 1: a character tokenizer and a byte-level BPE trained from scratch.

`CharTokenizer` is the nanoGPT "shakespeare_char" idea: one id per distinct character.
`BytePairTokenizer` is the minbpe / GPT-2 idea: start from the 256 byte values and
repeatedly merge the most frequent adjacent pair into a new token.

Both follow the same small protocol (`encode`, `decode`, `vocab_size`, `to_dict`), and
`to_dict()` returns plain JSON-able data, so a tokenizer can travel inside a torch
checkpoint and be rebuilt with `tokenizer_from_dict`.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter, defaultdict
from typing import Any, Protocol

import regex
from tqdm import tqdm

# GPT-2's pre-tokenization pattern: contractions, letter runs, digit runs, punctuation runs
# and whitespace, each optionally with one leading space. BPE merges never cross these chunks,
# so " dog." can never become a single token that glues a word to its punctuation.
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

Pair = tuple[int, int]


class Tokenizer(Protocol):
    """What the training and sampling code needs from any tokenizer."""

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    @property
    def vocab_size(self) -> int: ...

    def to_dict(self) -> dict[str, Any]: ...


class CharTokenizer:
    """One token per distinct character; ids follow the order of `chars`."""

    kind = "char"

    def __init__(self, chars: list[str]) -> None:
        if len(set(chars)) != len(chars):
            raise ValueError("CharTokenizer vocabulary has duplicate characters")
        self.chars = list(chars)
        self._stoi = {ch: i for i, ch in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        # Sorting makes the ids independent of where characters first appear in the text.
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self._stoi[ch] for ch in text]
        except KeyError as err:
            raise ValueError(
                f"character {err.args[0]!r} is not in the CharTokenizer vocabulary "
                f"({self.vocab_size} characters seen in the training text)"
            ) from None

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "chars": list(self.chars)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CharTokenizer:
        _check_kind(d, cls.kind)
        return cls(list(d["chars"]))


def _merge(ids: list[int], pair: Pair, new_id: int) -> list[int]:
    """Replace each occurrence of `pair` in `ids` by `new_id`, scanning left to right.

    Left to right without overlap: "aaa" with pair (a, a) becomes [new_id, a].
    """
    out: list[int] = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


class BytePairTokenizer:
    """Byte-level BPE: 256 byte tokens plus one token per learned merge.

    Merge number r (0-based) creates token id 256 + r, so a token's id is also its merge rank.
    Any string can be encoded (every byte is in the vocabulary), so there is no unknown token.
    """

    kind = "bpe"

    def __init__(self, merges: list[Pair] | None = None, pattern: str = GPT2_SPLIT_PATTERN) -> None:
        self.pattern = pattern
        self._split = regex.compile(pattern)
        # Insertion order is merge order: pair -> id of the token it becomes.
        self._merges: dict[Pair, int] = {}
        self.vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}
        for a, b in merges or []:
            new_id = 256 + len(self._merges)
            self._merges[(a, b)] = new_id
            self.vocab[new_id] = self.vocab[a] + self.vocab[b]
        # Natural text repeats the same words constantly; encode each distinct chunk once.
        self._cache: dict[bytes, list[int]] = {}

    @classmethod
    def train(
        cls, text: str, vocab_size: int, verbose: bool = False, progress: bool = False
    ) -> BytePairTokenizer:
        """Learn `vocab_size - 256` merges from `text` (fewer if no adjacent pairs remain)."""
        if vocab_size < 256:
            raise ValueError(f"vocab_size must be at least 256 (the byte tokens), got {vocab_size}")
        tok = cls()
        # Work on distinct chunks weighted by how often they occur, not on the raw text:
        # a few thousand distinct words stand in for hundreds of thousands of characters.
        chunk_counts = Counter(chunk.encode("utf-8") for chunk in tok._split.findall(text))
        words = [list(chunk) for chunk in chunk_counts]
        freqs = list(chunk_counts.values())

        # Pair counts over the whole text, plus which words contain each pair, so that a merge
        # only revisits the words it can change instead of recounting everything.
        stats: Counter[Pair] = Counter()
        where: defaultdict[Pair, set[int]] = defaultdict(set)
        for w, (word, freq) in enumerate(zip(words, freqs)):
            for pair in zip(word, word[1:]):
                stats[pair] += freq
                where[pair].add(w)

        for new_id in tqdm(range(256, vocab_size), desc="BPE merges", disable=not progress):
            if not stats:
                break  # every chunk is a single token: nothing left to merge
            # Most frequent pair; ties go to the smallest pair so training is reproducible.
            pair = min(stats, key=lambda p: (-stats[p], p))
            count = stats[pair]
            touched: set[Pair] = set()
            for w in where.pop(pair):
                word, freq = words[w], freqs[w]
                merged = _merge(word, pair, new_id)
                if len(merged) == len(word):
                    continue  # stale entry: an earlier merge already consumed the pair here
                old_pairs = list(zip(word, word[1:]))
                for p in old_pairs:
                    stats[p] -= freq
                for p in zip(merged, merged[1:]):
                    stats[p] += freq
                    where[p].add(w)
                touched.update(old_pairs)
                words[w] = merged
            for p in touched:
                if stats[p] <= 0:
                    del stats[p]

            tok._merges[pair] = new_id
            tok.vocab[new_id] = tok.vocab[pair[0]] + tok.vocab[pair[1]]
            if verbose:
                print(
                    f"merge {new_id - 255}/{vocab_size - 256}: {pair} -> {new_id} "
                    f"{tok.vocab[new_id]!r} ({count} occurrences)"
                )
        return tok

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def merges(self) -> list[tuple[Pair, int]]:
        """The learned merges in the order they were learned: ((a, b), new_id)."""
        return list(self._merges.items())

    def _encode_chunk(self, chunk: bytes) -> list[int]:
        ids = list(chunk)
        while len(ids) >= 2:
            # Apply the earliest-learned merge present, as training did; later merges build on it.
            pair = min(zip(ids, ids[1:]), key=lambda p: self._merges.get(p, math.inf))
            if pair not in self._merges:
                break
            ids = _merge(ids, pair, self._merges[pair])
        return ids

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for chunk in self._split.findall(text):
            key = chunk.encode("utf-8")
            if key not in self._cache:
                self._cache[key] = self._encode_chunk(key)
            ids.extend(self._cache[key])
        return ids

    def decode(self, ids: list[int]) -> str:
        # A slice of ids can end mid-way through a multi-byte character; show U+FFFD, don't crash.
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")

    def to_dict(self) -> dict[str, Any]:
        # The ids are implied by the merge order, so the pairs alone define the tokenizer.
        return {"kind": self.kind, "pattern": self.pattern, "merges": [[a, b] for a, b in self._merges]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BytePairTokenizer:
        _check_kind(d, cls.kind)
        return cls([(a, b) for a, b in d["merges"]], pattern=d["pattern"])

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f)

    @classmethod
    def load(cls, path: str | os.PathLike) -> BytePairTokenizer:
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))


_KINDS: dict[str, type[CharTokenizer] | type[BytePairTokenizer]] = {
    CharTokenizer.kind: CharTokenizer,
    BytePairTokenizer.kind: BytePairTokenizer,
}


def _check_kind(d: dict[str, Any], kind: str) -> None:
    if d.get("kind") != kind:
        raise ValueError(f"expected a tokenizer dict of kind {kind!r}, got kind {d.get('kind')!r}")


def tokenizer_from_dict(d: dict[str, Any]) -> Tokenizer:
    """Rebuild whichever tokenizer `to_dict()` produced `d` (e.g. one stored in a checkpoint)."""
    kind = d.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"unknown tokenizer kind {kind!r}; expected one of {sorted(_KINDS)}")
    return _KINDS[kind].from_dict(d)
