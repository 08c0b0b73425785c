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
from pathlib import Path

from month3_mamba.read import DEFAULT_CKPT
from month3_mamba.recall import evaluate_recall
from month3_mamba.train_recall import load_recall_model
from shared.memory import MIB, peak_rss_bytes
from shared.runtime import set_threads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", default=str(DEFAULT_CKPT), help="recall checkpoint (default: the committed one)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[1000, 8000, 64000, 128000],
                        help="document lengths in bytes (= tokens)")
    parser.add_argument("--docs", type=int, default=8, help="documents per length (read side by side)")
    parser.add_argument("--facts", type=int, default=0, help="facts per document (0: the task's n_facts)")
    parser.add_argument("--chunk", type=int, default=2048, help="bytes per streamed chunk")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--json", default="", help="also write the results here")


def main(args: argparse.Namespace) -> None:
    set_threads(args.threads)
    model, task = load_recall_model(args.ckpt)
    results = []
    print(f"{'length':>9} {'accuracy':>9} {'digits':>7} {'answers':>8} {'seconds':>8} {'tokens/s':>9} {'peak RSS':>9}")
    for length in args.lengths:
        r = evaluate_recall(model, length, task, n_docs=args.docs, n_facts=args.facts or task.n_facts,
                            chunk=args.chunk, seed=args.seed)
        r["peak_rss_mb"] = peak_rss_bytes() / MIB
        results.append(r)
        print(f"{length:>9,} {r['accuracy']:>9.3f} {r['digit_accuracy']:>7.3f} {r['answers']:>8} "
              f"{r['seconds']:>8.1f} {r['tokens_per_s']:>9,.0f} {r['peak_rss_mb']:>7.0f}MB", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
