"""Structured output: decoding constrained to JSON that validates against a JSON schema.

    constraint = JsonConstraint(tokenizer, {"type": "object", "properties": {"city": {"type": "string"}},
                                            "required": ["city"], "additionalProperties": False})
    tokens = stream_tokens(model, ids, 64, eos, constraint=constraint)   # always parses, always validates

A prompt asking for JSON is a hope; a grammar is a guarantee. At every step llguidance (the
constrained-decoding engine behind vLLM's and llama.cpp's structured outputs) computes which tokens of
the vocabulary keep the text a prefix of some JSON value the schema accepts; the others get a logit of
-inf before sampling, and end-of-turn is allowed only once the value is complete. The model still
chooses among the allowed tokens, so the content is its own; only the form is enforced.
`{"type": "object"}` is OpenAI's `json_object` mode (any object).
"""

from __future__ import annotations

import json
import weakref
from typing import Any

import numpy as np
import torch
from torch import Tensor

ANY_OBJECT: dict[str, Any] = {"type": "object"}
COMPACT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
_LL_TOKENIZERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # building one takes about a second


def _ll_tokenizer(tokenizer):
    import llguidance.hf

    if tokenizer not in _LL_TOKENIZERS:
        _LL_TOKENIZERS[tokenizer] = llguidance.hf.from_tokenizer(tokenizer)
    return _LL_TOKENIZERS[tokenizer]


def _grammar(schema: dict[str, Any] | None) -> str:
    from llguidance import LLMatcher

    # One line, `, ` and `: ` between items: a small model given free whitespace can indent for ever.
    return LLMatcher.grammar_from_json_schema(json.dumps(schema or ANY_OBJECT), overrides=COMPACT)


def schema_error(tokenizer, schema: dict[str, Any] | None) -> str:
    """Why `schema` cannot constrain decoding ("" when it can): asked before a request is answered."""
    from llguidance import LLMatcher

    try:
        return LLMatcher.validate_grammar(_grammar(schema), _ll_tokenizer(tokenizer))
    except ValueError as err:
        return str(err)


class JsonConstraint:
    """The `inference.Constraint` of one answer: masks the logits of each step, then consumes its token."""

    def __init__(self, tokenizer, schema: dict[str, Any] | None = None) -> None:
        from llguidance import LLMatcher

        self.matcher = LLMatcher(_ll_tokenizer(tokenizer), _grammar(schema), log_level=0)
        if self.matcher.is_error():
            raise ValueError(f"the schema cannot constrain decoding: {self.matcher.get_error()}")

    def mask_(self, logits: Tensor) -> None:
        """Set the logits of every token the grammar forbids now to -inf (in place, shape (..., vocab))."""
        bits = np.frombuffer(self.matcher.compute_bitmask(), dtype=np.uint8)
        allowed = np.unpackbits(bits, bitorder="little").astype(bool)  # bit i of the mask = token i
        vocab = logits.size(-1)
        keep = np.zeros(vocab, dtype=bool)  # the model's vocabulary may be padded past the tokenizer's
        keep[: min(vocab, allowed.size)] = allowed[:vocab]
        logits[..., torch.from_numpy(~keep)] = float("-inf")

    def consume(self, token_id: int) -> None:
        if not self.matcher.consume_token(token_id):
            raise RuntimeError(f"a token outside the grammar was sampled: {self.matcher.get_error()}")

    @property
    def complete(self) -> bool:
        """The text so far is a whole value the schema accepts."""
        return self.matcher.is_accepting()
