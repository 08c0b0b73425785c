"""Sentence embeddings: all-MiniLM-L6-v2 from the offline store by default, any sentence-transformers
model by name (BGE, E5 ... for online users), batched and L2-normalised, so a dot product is the cosine.

Families differ in how they want their inputs: E5 was trained with `query: ` / `passage: ` prefixes,
BGE (v1.5, English and Chinese) with an instruction before queries only. `FAMILIES` holds those rules;
a model that matches none gets its text as is.

`embedded` counts the texts embedded since construction: the ingestion tests use it to show that
re-ingesting an unchanged folder computes no embedding at all.

`HashingEmbedder` (model name "hashing") is a bag-of-words feature-hashing embedder with no model at
all: instant, deterministic, and poor at meaning. The tests of ingestion mechanics (resume after a
kill, bad files, a 1,000-page PDF) use it where the embedding quality is not what is tested.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2"
HASHING = "hashing"


@dataclass(frozen=True)
class Family:
    pattern: str  # regex searched in the lower-cased model name
    query_prefix: str = ""
    passage_prefix: str = ""


FAMILIES = (
    Family(r"(^|/)(multilingual-)?e5-", "query: ", "passage: "),
    Family(r"bge-.*-(en|zh)(-v1\.5)?$", "Represent this sentence for searching relevant passages: ", ""),
)


def family_of(name: str) -> Family:
    lowered = name.lower()
    return next((f for f in FAMILIES if re.search(f.pattern, lowered)), Family(""))


class Embedder:
    """A sentence-transformers model; `embed_passages` for chunks, `embed_queries` for questions."""

    def __init__(self, name: str = DEFAULT_MODEL, batch_size: int = 32, device: str = "cpu",
                 progress: bool = False) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        from shared.models import embedding_model_path

        hf_logging.disable_progress_bar()  # "Loading weights" on every start says nothing useful

        self.name = name
        self.family = family_of(name)
        self.batch_size = batch_size
        self.progress = progress
        self.model = SentenceTransformer(embedding_model_path(name), device=device)
        self.dim = int(self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension")
                       else self.model.get_sentence_embedding_dimension())
        self.embedded = 0

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens per text as the model's tokenizer counts them (no special tokens)."""
        if not texts:
            return []
        encoded = self.model.tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += len(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([self.family.passage_prefix + t for t in texts])

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([self.family.query_prefix + t for t in texts])


_WORD = re.compile(r"\w+")


class HashingEmbedder:
    """Signed feature hashing of lower-cased words and word pairs, L2-normalised; no model."""

    def __init__(self, dim: int = 384) -> None:
        self.name, self.dim, self.embedded = HASHING, dim, 0
        self.family = Family("")

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(_WORD.findall(t)) for t in texts]

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            for feature in words + [a + " " + b for a, b in zip(words, words[1:])]:
                h = zlib.crc32(feature.encode())
                out[row, h % self.dim] += 1.0 if (h >> 31) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    embed_passages = _encode
    embed_queries = _encode


def load_embedder(name: str = DEFAULT_MODEL, batch_size: int = 32) -> Embedder | HashingEmbedder:
    from shared.errors import UserError
    from shared.models import ModelUnavailable

    if name == HASHING:
        return HashingEmbedder()
    try:
        return Embedder(name, batch_size)
    except (ModelUnavailable, OSError, ValueError) as err:
        raise UserError(f"cannot load the embedding model {name!r}: {err}") from err
