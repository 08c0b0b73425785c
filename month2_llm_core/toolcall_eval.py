"""Held-out exact match of tool calls: the base model, and base + an adapter, on the same prompts.

    python -m month2_llm_core eval-toolcalls                 # base vs the committed adapter, 100 held-out
    python -m month2_llm_core eval-toolcalls --adapter ""    # the base model alone
    python -m month2_llm_core eval-toolcalls --adapter runs/month2/toolcall-qlora/adapter --qlora true

The score is strict: the answer must parse as exactly one JSON call (`toolcalls.parse_tool_call`)
equal to the expected one. A lenient score (a call found anywhere in the answer) shows how close
a model came.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from month2_llm_core.hub import explain_load_errors
from month2_llm_core.toolcall_model import (
    ADAPTER_DIR,
    BATCH_SIZE,
    MAX_NEW_TOKENS,
    generate_answers,
    load_adapter,
    load_base_model,
    require_adapter,
)
from month2_llm_core.toolcalls import Example, calls_equal, extract_tool_call, make_examples, parse_tool_call
from shared.config import add_config_arguments, config_from_args
from shared.errors import UserError
from shared.models import SMOLLM2
from shared.runtime import set_threads


def score(answers: list[str], examples: list[Example]) -> dict[str, Any]:
    """Strict exact match (the score), lenient exact match (JSON found anywhere), the share
    of answers that parse strictly, and strict exact match per tool."""
    strict = [calls_equal(parse_tool_call(a), e.call) for a, e in zip(answers, examples)]
    lenient = [calls_equal(extract_tool_call(a), e.call) for a, e in zip(answers, examples)]
    per_tool_hits: Counter[str] = Counter()
    per_tool_n: Counter[str] = Counter()
    for ok, e in zip(strict, examples):
        per_tool_n[e.call["name"]] += 1
        per_tool_hits[e.call["name"]] += ok
    return {
        "n": len(examples),
        "exact_match": sum(strict) / max(1, len(examples)),
        "lenient_match": sum(lenient) / max(1, len(examples)),
        "valid_json": sum(parse_tool_call(a) is not None for a in answers) / max(1, len(answers)),
        "per_tool": {tool: per_tool_hits[tool] / per_tool_n[tool] for tool in per_tool_n},
    }


def failures(answers: list[str], examples: list[Example], limit: int = 10) -> list[dict[str, str]]:
    """The first `limit` (request, expected, answer) triples where the strict call is wrong."""
    wrong = [
        {"request": e.request, "expected": e.answer, "answer": a}
        for a, e in zip(answers, examples)
        if not calls_equal(parse_tool_call(a), e.call)
    ]
    return wrong[:limit]


def evaluate(model, tokenizer, examples: list[Example], max_new_tokens: int = MAX_NEW_TOKENS,
             batch_size: int = BATCH_SIZE) -> tuple[dict[str, Any], list[str]]:
    """(scores, answers) of `model` on `examples`."""
    answers = generate_answers(model, tokenizer, [e.request for e in examples], max_new_tokens, batch_size)
    return score(answers, examples), answers


# ---------------------------------------------------------------- command line


@dataclass
class EvalConfig:
    model: str = field(default=SMOLLM2, metadata={"help": "chat model: 'smollm2' (offline), a folder or a hub id"})
    adapter: str = field(default=str(ADAPTER_DIR), metadata={"help": "adapter folder; empty: the base model only"})
    qlora: bool = field(default=False, metadata={"help": "load the base in 4-bit NF4 (for adapters trained so)"})
    n: int = field(default=100, metadata={"help": "held-out examples"})
    data_seed: int = field(default=0, metadata={"help": "seed of the example generator"})
    max_new_tokens: int = field(default=MAX_NEW_TOKENS, metadata={"help": "greedy decoding budget per answer"})
    batch_size: int = field(default=BATCH_SIZE, metadata={"help": "prompts decoded together (left-padded)"})
    show: int = field(default=5, metadata={"help": "print up to this many wrong answers per model"})
    threads: int = field(default=0, metadata={"help": "torch threads (0: $HYBRID_AI_THREADS or automatic)"})

    def __post_init__(self) -> None:
        if min(self.n, self.max_new_tokens, self.batch_size) < 1 or min(self.show, self.threads) < 0:
            raise ValueError("--n, --max-new-tokens and --batch-size must be at least 1; --show and --threads >= 0")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, EvalConfig)


def main(args: argparse.Namespace) -> None:
    """Score the base model and (if given) base + adapter on the held-out split."""
    cfg = config_from_args(EvalConfig, args)
    threads = set_threads(cfg.threads or None)
    try:
        examples = make_examples("heldout", cfg.n, cfg.data_seed)
    except ValueError as err:  # more examples than the held-out templates can make
        raise UserError(f"--n {cfg.n}: {err}") from None
    if cfg.adapter:
        require_adapter(cfg.adapter)
    with explain_load_errors(cfg.model):
        model, tokenizer = load_base_model(cfg.model, cfg.qlora)
    runs = [("base", nullcontext)]
    if cfg.adapter:
        model = load_adapter(model, cfg.adapter)
        runs = [("base", model.disable_adapter), (f"base + adapter {cfg.adapter}", nullcontext)]
    print(f"[eval] {cfg.n} held-out examples, greedy, {threads} threads")
    for label, context in runs:
        start = time.perf_counter()
        with context():
            s, answers = evaluate(model, tokenizer, examples, cfg.max_new_tokens, cfg.batch_size)
        _report(label, s, answers, examples, cfg.show, time.perf_counter() - start)


def _report(label: str, s: dict[str, Any], answers: list[str], examples: list[Example], show: int,
            secs: float) -> None:
    per_tool = ", ".join(f"{k} {v:.0%}" for k, v in s["per_tool"].items())
    print(
        f"{label}: exact match {s['exact_match']:.1%} (lenient {s['lenient_match']:.1%}, "
        f"strict JSON {s['valid_json']:.1%}) of {s['n']} in {secs:.0f} s; per tool: {per_tool}"
    )
    for wrong in failures(answers, examples, show):
        print(f"    {wrong['request']!r}\n      expected {wrong['expected']}")
        print(f"      got      {wrong['answer'].strip()!r}")
