"""Held-out exact match of tool calls: the base model, and base + an adapter, on the same prompts.

    python -m month2_llm_core eval-toolcalls                 # base vs the committed adapter, 100 held-out
    python -m month2_llm_core eval-toolcalls --adapter ""    # the base model alone
    python -m month2_llm_core eval-toolcalls --adapter runs/month2/toolcall-qlora/adapter --qlora true
    python -m month2_llm_core eval-toolcalls --table true    # the before/after table, three sets (below)

`--table true` scores each adapter of `--adapters` (default: the committed one and the mixed one) on
three sets: "builtin" (the original held-out split, the four tools in every prompt), "mixed" (the
held-out split of `toolcall_pool.make_mixed_examples`: a tool list per request, unseen tools, word
problems, no-tool requests) and "second" (`eval_sets/toolcalls_second.jsonl`, written by hand), and
prints one row per (adapter, set): exact match, tool choice (the right tool or "no tool"), argument
exact match over the requests that need a call, "no tool" accuracy and exact match on unseen tools.

The score is strict: the answer must parse as exactly one JSON call (`toolcalls.parse_tool_call`)
equal to the expected one. A lenient score (a call found anywhere in the answer) shows how close
a model came.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from month2_llm_core.hub import explain_load_errors
from month2_llm_core.toolcall_model import (
    ADAPTER_DIR,
    BATCH_SIZE,
    MAX_NEW_TOKENS,
    MIXED_ADAPTER_DIR,
    generate_answers,
    load_adapter,
    load_base_model,
    require_adapter,
)
from month2_llm_core.toolcall_pool import example_kind, load_eval_set, make_mixed_examples
from month2_llm_core.toolcalls import (
    Example,
    calls_equal,
    extract_tool_call,
    is_no_call,
    make_examples,
    parse_answer,
    parse_tool_call,
)
from shared.config import add_config_arguments, config_from_args
from shared.errors import UserError
from shared.models import SMOLLM2
from shared.runtime import set_threads

NO_TOOL = "(no tool)"  # the per-tool key of examples whose answer is {"name": null}


def is_correct(answer: str, example: Example, strict: bool = True) -> bool:
    """Exact match: the expected call, or the "no tool" answer where no listed tool fits."""
    if example.call is None:
        return is_no_call(answer)
    return calls_equal((parse_tool_call if strict else extract_tool_call)(answer), example.call)


def chosen_tool(answer: str) -> str | None:
    """The tool an answer picks: its name, NO_TOOL, or None for an answer that parses as neither."""
    kind, call = parse_answer(answer)
    return call["name"] if kind == "call" else (NO_TOOL if kind == "none" else None)


def score(answers: list[str], examples: list[Example]) -> dict[str, Any]:
    """Strict exact match (the score), lenient exact match (JSON found anywhere), the share of
    answers that parse strictly (a call or the no-tool answer), tool-choice accuracy (the right
    tool or "no tool", arguments aside), exact match per tool, and exact match by kind
    (built-in tool, unseen tool, no tool...)."""
    if len(answers) != len(examples):
        raise ValueError(f"{len(answers)} answers for {len(examples)} examples")
    strict = [is_correct(a, e) for a, e in zip(answers, examples)]
    lenient = [is_correct(a, e, strict=False) for a, e in zip(answers, examples)]
    choice = [chosen_tool(a) == (e.call["name"] if e.call else NO_TOOL) for a, e in zip(answers, examples)]
    hits: dict[str, Counter[str]] = {"per_tool": Counter(), "per_kind": Counter()}
    counts: dict[str, Counter[str]] = {"per_tool": Counter(), "per_kind": Counter()}
    for ok, e in zip(strict, examples):
        for group, key in (("per_tool", e.call["name"] if e.call else NO_TOOL), ("per_kind", example_kind(e))):
            counts[group][key] += 1
            hits[group][key] += ok
    n = max(1, len(examples))
    return {
        "n": len(examples),
        "exact_match": sum(strict) / n,
        "lenient_match": sum(lenient) / n,
        "valid_json": sum(parse_answer(a)[0] != "invalid" for a in answers) / n,
        "tool_choice": sum(choice) / n,
        "per_tool": {k: hits["per_tool"][k] / counts["per_tool"][k] for k in counts["per_tool"]},
        "per_kind": {k: hits["per_kind"][k] / counts["per_kind"][k] for k in counts["per_kind"]},
    }


def table_row(s: dict[str, Any], examples: list[Example], answers: list[str]) -> dict[str, Any]:
    """The before/after table's figures: exact match, tool choice, arguments (exact match over the
    requests that need a call), no-tool accuracy, unseen-tool exact match (None: no such request)."""
    with_call = [(a, e) for a, e in zip(answers, examples) if e.call is not None]
    return {
        "n": s["n"],
        "exact_match": s["exact_match"],
        "tool_choice": s["tool_choice"],
        "arguments": sum(is_correct(a, e) for a, e in with_call) / max(1, len(with_call)),
        "no_tool": s["per_kind"].get("no tool"),
        "unseen_tools": s["per_kind"].get("unseen tool"),
    }


def failures(answers: list[str], examples: list[Example], limit: int = 10) -> list[dict[str, str]]:
    """The first `limit` (request, expected, answer) triples where the strict call is wrong."""
    wrong = [
        {"request": e.request, "expected": e.answer, "answer": a}
        for a, e in zip(answers, examples)
        if not is_correct(a, e)
    ]
    return wrong[:limit]


def evaluate(model, tokenizer, examples: list[Example], max_new_tokens: int = MAX_NEW_TOKENS,
             batch_size: int = BATCH_SIZE) -> tuple[dict[str, Any], list[str]]:
    """(scores, answers) of `model` on `examples`."""
    answers = generate_answers(model, tokenizer, [e.request for e in examples], max_new_tokens, batch_size,
                               tools=[e.tools for e in examples])
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
    table: bool = field(default=False, metadata={"help": "the before/after table over --adapters and --sets"})
    adapters: str = field(default=f"{ADAPTER_DIR},{MIXED_ADAPTER_DIR}",
                          metadata={"help": "with --table: comma-separated adapter folders ('' : the base model)"})
    sets: str = field(default="builtin,mixed,second", metadata={"help": "with --table: builtin, mixed, second"})
    mixed_n: int = field(default=72, metadata={"help": "with --table: examples of the mixed held-out split"})
    out: str = field(default="", metadata={"help": "with --table: also write the figures to this JSON file"})
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
    if cfg.table:
        return run_table(cfg, threads)
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


def eval_sets(cfg: EvalConfig) -> dict[str, list[Example]]:
    makers = {
        "builtin": lambda: make_examples("heldout", cfg.n, cfg.data_seed),
        "mixed": lambda: make_mixed_examples("heldout", cfg.mixed_n, cfg.data_seed),
        "second": load_eval_set,
    }
    names = [n.strip() for n in cfg.sets.split(",") if n.strip()]
    unknown = [n for n in names if n not in makers]
    if unknown or not names:
        raise UserError(f"--sets: unknown {unknown}; choose from {sorted(makers)}")
    return {name: makers[name]() for name in names}


def run_table(cfg: EvalConfig, threads: int) -> None:
    """Every adapter of --adapters on every set of --sets: one table row each."""
    sets = eval_sets(cfg)
    adapters = [a.strip() for a in cfg.adapters.split(",")]
    for adapter in adapters:
        if adapter:
            require_adapter(adapter)
    with explain_load_errors(cfg.model):
        base, tokenizer = load_base_model(cfg.model, cfg.qlora)
    print(f"[eval] sets {', '.join(f'{k} ({len(v)})' for k, v in sets.items())}, greedy, {threads} threads")
    rows: list[dict[str, Any]] = []
    for adapter in adapters:
        model = load_adapter(base, adapter) if adapter else base
        for set_name, examples in sets.items():
            start = time.perf_counter()
            s, answers = evaluate(model, tokenizer, examples, cfg.max_new_tokens, cfg.batch_size)
            rows.append({"adapter": adapter or "(base)", "set": set_name, **table_row(s, examples, answers),
                         "per_tool": s["per_tool"], "failures": failures(answers, examples, cfg.show)})
            _report(f"{adapter or 'base'} on {set_name}", s, answers, examples, cfg.show, time.perf_counter() - start)
        if adapter:
            base = model.unload()  # the base without LoRA layers, for the next adapter
    print(format_table(rows))
    if cfg.out:
        Path(cfg.out).write_text(json.dumps(rows, indent=2) + "\n")


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table (percentages; "-" where a set has no such request)."""
    pct = lambda v: "-" if v is None else f"{v:.0%}"  # noqa: E731
    lines = ["| adapter | set | n | exact match | tool choice (incl. no tool) | arguments | no tool | unseen tools |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {Path(r['adapter']).name} | {r['set']} | {r['n']} | {pct(r['exact_match'])} | "
                     f"{pct(r['tool_choice'])} | {pct(r['arguments'])} | {pct(r['no_tool'])} | "
                     f"{pct(r['unseen_tools'])} |")
    return "\n".join(lines)
