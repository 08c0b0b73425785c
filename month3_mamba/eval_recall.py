"""Recall accuracy against document length, each document read in streaming chunks.

    python -m month3_mamba eval-recall --lengths 1000 8000 64000 128000
    python -m month3_mamba eval-recall --ckpt runs/month3_recall/ckpt.pt --lengths 1000000 --docs 4

Documents are fresh (a fixed seed): prose with `--facts` facts at random places, questions
at the end; accuracy is the fraction of answers with every digit right (greedy decoding
would write exactly these). Chance is 10^-value_len.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from month3_mamba.checks import require_at_least
from month3_mamba.families import load_recall_model
from month3_mamba.read import DEFAULT_CKPT
from month3_mamba.recall import check_fits, evaluate_recall
from shared.config import add_config_arguments, config_from_args
from shared.errors import UserError
from shared.memory import MIB, peak_rss_bytes
from shared.runtime import set_threads

DEFAULT_LENGTHS = [1000, 8000, 64000, 128000]


@dataclass
class EvalRecallConfig:
    ckpt: str = field(default=str(DEFAULT_CKPT), metadata={"help": "recall checkpoint of any family; the "
                                                                   "default: the committed reader"})
    docs: int = field(default=8, metadata={"help": "documents per length (read side by side)"})
    facts: int = field(default=0, metadata={"help": "facts per document (0: the task's n_facts)"})
    chunk: int = field(default=2048, metadata={"help": "bytes per streamed chunk"})
    seed: int = field(default=0, metadata={"help": "seed of the documents"})
    threads: int = field(default=1, metadata={"help": "torch threads"})
    json: str = field(default="", metadata={"help": "also write the results to this JSON file"})

    def __post_init__(self) -> None:
        require_at_least(self, 1, "docs", "chunk", "threads")
        require_at_least(self, 0, "facts")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # A list of values: added here, since config fields become single-value options.
    parser.add_argument("--lengths", type=int, nargs="+", default=DEFAULT_LENGTHS, metavar="N",
                        help=f"document lengths in bytes (= tokens) (default: {' '.join(map(str, DEFAULT_LENGTHS))})")
    add_config_arguments(parser, EvalRecallConfig)


def main(args: argparse.Namespace) -> None:
    cfg = config_from_args(EvalRecallConfig, args)
    set_threads(cfg.threads)
    model, task = load_recall_model(cfg.ckpt)
    n_facts = cfg.facts or task.n_facts
    for length in args.lengths:
        try:
            check_fits(length, n_facts, task)
        except ValueError as err:
            raise UserError(f"--lengths {length}: {err}") from None
    results = []
    print(f"{'length':>9} {'accuracy':>9} {'digits':>7} {'answers':>8} {'seconds':>8} {'tokens/s':>9} {'peak RSS':>9}")
    for length in args.lengths:
        r = evaluate_recall(model, length, task, n_docs=cfg.docs, n_facts=n_facts, chunk=cfg.chunk, seed=cfg.seed)
        r["peak_rss_mb"] = peak_rss_bytes() / MIB
        results.append(r)
        print(f"{length:>9,} {r['accuracy']:>9.3f} {r['digit_accuracy']:>7.3f} {r['answers']:>8} "
              f"{r['seconds']:>8.1f} {r['tokens_per_s']:>9,.0f} {r['peak_rss_mb']:>7.0f}MB", flush=True)
    if cfg.json:
        Path(cfg.json).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.json).write_text(json.dumps(results, indent=2))
