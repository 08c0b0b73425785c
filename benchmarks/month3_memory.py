"""Month 3 benchmark: the memory readers (sentences task) against history length and number of facts.

For each checkpoint NAME=PATH, every (length, facts) point: `--docs` histories of held-out prose
(`--corpus`, default licenses) with that many sentence facts (`--vocab`: train or heldout keys and
values), every fact asked on its own from the state after the history (as LongMemory asks), exact
match of value + terminator, 95% Wilson interval. Points that do not fit (16 facts in 1k tokens) are
skipped. Writes runs/bench_month3/memory.json, memory_recall_vs_length.png (one line per reader and
number of facts) and memory_recall_vs_facts.png.

    OMP_NUM_THREADS=1 python benchmarks/month3_memory.py \\
        --ckpts mamba=runs/month3_memory/recall.pt rwkv=runs/month3_memory_rwkv/phase1.pt \\
        --lengths 1000 10000 100000 --facts 1 4 16 --docs 32
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from month3_mamba.families import load_recall_model
from month3_mamba.recall import check_fits, evaluate_recall
from shared.plotting import plot_series

OUT = Path("runs/bench_month3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpts", nargs="+", required=True, metavar="NAME=PATH")
    parser.add_argument("--lengths", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--facts", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--docs", type=int, default=32)
    parser.add_argument("--corpus", default="licenses")
    parser.add_argument("--vocab", default="train", choices=["train", "heldout"])
    parser.add_argument("--out", default=str(OUT / "memory.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for spec in args.ckpts:
        name, path = spec.split("=", 1)
        model, task = load_recall_model(path)
        for facts in args.facts:
            for length in args.lengths:
                try:
                    check_fits(length, facts, task, "independent")
                except ValueError:
                    print(f"{name:<12} {facts:>2} facts {length:>9,} tokens: does not fit, skipped")
                    continue
                r = evaluate_recall(model, length, task, n_docs=args.docs, n_facts=facts, corpus=args.corpus,
                                    vocab=args.vocab, questions="independent")
                rows.append({"name": name, "ckpt": path, **r})
                low, high = r["ci95"]
                print(f"{name:<12} {facts:>2} facts {length:>9,} tokens: recall {r['accuracy']:.3f} "
                      f"[{low:.2f}, {high:.2f}] of {r['answers']} (bytes {r['byte_accuracy']:.3f}), "
                      f"{r['seconds']:.0f} s", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    title = f"{args.corpus} prose (held out), {args.vocab} keys, {args.docs} histories per point"
    plot_series(series(rows, lambda r: f"{r['name']}, {r['facts']} facts", "length"),
                out.with_name("memory_recall_vs_length.png"), "history length (tokens)", "exact recall", title,
                logx=True)
    plot_series(series(rows, lambda r: f"{r['name']}, {r['length']:,} tokens", "facts"),
                out.with_name("memory_recall_vs_facts.png"), "facts held", "exact recall", title, logx=True)


def series(rows: list[dict], label, x: str) -> dict:
    """{label: (xs, recall)} for plot_series."""
    out: dict[str, tuple[list, list]] = {}
    for r in rows:
        xs, ys = out.setdefault(label(r), ([], []))
        xs.append(r[x])
        ys.append(r["accuracy"])
    return out

if __name__ == "__main__":
    main()
