"""Month 3 benchmark: the memory readers (sentences task) against history length and number of facts.

For each checkpoint NAME=PATH, every (length, facts) point: `--docs` histories of held-out prose
(`--corpus`, default licenses) with that many sentence facts (`--vocab`: train or heldout keys and
values), every fact asked on its own from the state after the history (as LongMemory asks), exact
match of value + terminator, 95% Wilson interval; `--untold N`: also N keys per history that it never
stated, right when answered 'unknown.' (a reader trained without untold questions never says it; with
`--close-untold` each is one part away from a told key: "her door code" beside "my door code"). Points that
do not fit (16 facts in 1k tokens) are skipped. Writes runs/bench_month3/memory.json,
memory_recall_vs_length.png (one line per reader and number of facts) and memory_recall_vs_facts.png (named
after `--out`).

`--confidence N`: also, per reader and point, N histories read one by one through LongMemory (as month 6 reads
a key's messages) and every fact asked with greedy decoding: how often an answer above each confidence threshold
is right, and how many answers clear it (month 6 trusts the reader above `memory_confidence` and searches the
transcript below it, and where the reader answers 'unknown'). Written to memory_confidence.json (named after `--out`).

    OMP_NUM_THREADS=1 python benchmarks/month3_memory.py \\
        --ckpts mamba=runs/month3_memory/recall.pt rwkv=runs/month3_memory_rwkv/phase1.pt \\
        --lengths 1000 10000 100000 --facts 1 4 16 --docs 32
    OMP_NUM_THREADS=1 python benchmarks/month3_memory.py --ckpts mamba=month3_mamba/checkpoints/memory.pt \\
        --lengths 1000 10000 --facts 4 --docs 32 --confidence 32
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import torch

from month3_mamba.delta import DeltaLM, write_rates
from month3_mamba.families import load_recall_model
from month3_mamba.memory import LongMemory
from month3_mamba.prose import filler
from month3_mamba.recall import check_fits, encode, evaluate_recall, make_document, random_facts, untold_note
from shared.plotting import plot_series

OUT = Path("runs/bench_month3")
THRESHOLDS = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95)


def greedy_answers(model, task, length: int, n_docs: int, n_facts: int, corpus: str, vocab: str,
                   seed: int = 1) -> list[tuple[float, bool, bool]]:
    """(confidence, right, known) of every fact of n_docs histories, each read alone and asked as LongMemory asks
    (known: the reader did not answer 'unknown')."""
    rng, out = random.Random(seed), []
    for _ in range(n_docs):
        facts = random_facts(rng, n_facts, task, vocab)
        text, _ = make_document(rng, length, facts, corpus, task.fact_format.snap_to_words, with_questions=False)
        memory = LongMemory(model, task)
        memory.write(text)
        for fact in facts:
            r = memory.recall(fact.key)
            out.append((r.confidence, r.stopped and r.answer == fact.value, r.known))
    return out


def by_threshold(answers: list[tuple[float, bool, bool]]) -> list[dict]:
    """Per threshold: the share of answers at or above it that are not 'unknown' (coverage: what month 6 would
    take) and the share of those that are right."""
    rows = []
    for t in THRESHOLDS:
        kept = [right for confidence, right, known in answers if known and confidence >= t]
        rows.append({"threshold": t, "coverage": len(kept) / len(answers),
                     "precision": sum(kept) / len(kept) if kept else None})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpts", nargs="+", required=True, metavar="NAME=PATH")
    parser.add_argument("--lengths", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--facts", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--docs", type=int, default=32)
    parser.add_argument("--corpus", default="licenses")
    parser.add_argument("--vocab", default="train", choices=["train", "heldout"])
    parser.add_argument("--untold", type=int, default=0, metavar="N", help="also N keys per history never stated, "
                                                                           "right when answered 'unknown.'")
    parser.add_argument("--close-untold", action="store_true", help="the untold keys one part away from a told "
                                                                    "key (another owner or thing): the hard case")
    parser.add_argument("--out", default=str(OUT / "memory.json"))
    parser.add_argument("--confidence", type=int, default=0, metavar="N", help="also N histories per point read "
                                                                               "one by one, answers decoded greedily, "
                                                                               "precision by confidence threshold")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for spec in args.ckpts:
        name, path = spec.split("=", 1)
        model, task = load_recall_model(path)
        if isinstance(model, DeltaLM):  # how often each delta-rule head writes over plain prose (no facts in it)
            prose = torch.tensor([encode(filler(random.Random(0), 20_000, args.corpus))])
            for layer, rates in enumerate(write_rates(model, prose)):
                shares = ", ".join(f"{r:.1%}" for r in rates.tolist())
                print(f"{name:<12} delta-rule layer {layer + 1} writes at {shares} of 20,000 bytes of {args.corpus} "
                      "prose (per head)", flush=True)
        for facts in args.facts:
            for length in args.lengths:
                try:
                    check_fits(length, facts, task, "independent")
                except ValueError:
                    print(f"{name:<12} {facts:>2} facts {length:>9,} tokens: does not fit, skipped")
                    continue
                r = evaluate_recall(model, length, task, n_docs=args.docs, n_facts=facts, corpus=args.corpus,
                                    vocab=args.vocab, questions="independent", untold=args.untold,
                                    close_untold=args.close_untold)
                rows.append({"name": name, "ckpt": path, **r})
                low, high = r["ci95"]
                print(f"{name:<12} {facts:>2} facts {length:>9,} tokens: recall {r['accuracy']:.3f} "
                      f"[{low:.2f}, {high:.2f}] of {r['answers']} (bytes {r['byte_accuracy']:.3f}), "
                      f"{r['seconds']:.0f} s{untold_note(r)}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    if args.confidence:
        calibration = []
        for row in rows:
            model, task = load_recall_model(row["ckpt"])
            answers = greedy_answers(model, task, row["length"], args.confidence, row["facts"], args.corpus,
                                     args.vocab)
            table = by_threshold(answers)
            calibration.append({"name": row["name"], "length": row["length"], "facts": row["facts"],
                                "answers": len(answers), "thresholds": table})
            cells = "  ".join(f">={t['threshold']:.2f}: {t['coverage']:.0%} kept, "
                              + (f"{t['precision']:.0%} right" if t["precision"] is not None else "-")
                              for t in table)
            print(f"{row['name']:<12} {row['facts']:>2} facts {row['length']:>9,} tokens, greedy: {cells}", flush=True)
        out.with_name(f"{out.stem}_confidence.json").write_text(json.dumps(calibration, indent=2))
    title = f"{args.corpus} prose (held out), {args.vocab} keys, {args.docs} histories per point"
    plot_series(series(rows, lambda r: f"{r['name']}, {r['facts']} facts", "length"),
                out.with_name(f"{out.stem}_recall_vs_length.png"), "history length (tokens)", "exact recall", title,
                logx=True, ylim=(0, 1.02))
    plot_series(series(rows, lambda r: f"{r['name']}, {r['length']:,} tokens", "facts"),
                out.with_name(f"{out.stem}_recall_vs_facts.png"), "facts held", "exact recall", title, logx=True,
                ylim=(0, 1.02))


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
