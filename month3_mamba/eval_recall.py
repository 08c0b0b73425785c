"""Recall accuracy against document length, each document read in streaming chunks.

    python -m month3_mamba eval-recall --lengths 1000 8000 64000 128000
    python -m month3_mamba eval-recall --ckpt runs/month3_recall/ckpt.pt --lengths 1000000 --docs 4
    python -m month3_mamba eval-recall --corpus idle --vocab heldout --facts 16 --lengths 10000

Documents are fresh (a fixed seed): prose of `--corpus` (default: `licenses`, held out from
every training corpus) with `--facts` facts at random places in the checkpoint's memory format,
each asked on its own from the state after the document (`--questions sequential`: all at its
end, the first reader's scoring). Accuracy is the fraction of answers with every scored byte
right (greedy decoding would write exactly these, and stop at the terminator), with a 95%
Wilson interval. Chance is 10^-value_len for braces, and far below that for sentences.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from month3_mamba.checks import require_at_least
from month3_mamba.facts import VOCABS
from month3_mamba.families import load_recall_model
from month3_mamba.prose import CORPORA
from month3_mamba.read import DEFAULT_CKPT
from month3_mamba.recall import QUESTION_MODES, check_fits, evaluate_recall
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
    corpus: str = field(default="licenses", metadata={"help": "prose of the documents (licenses and idle are held "
                                                              "out of training)", "choices": CORPORA})
    vocab: str = field(default="train", metadata={"help": "keys and values of sentence facts: the training "
                                                          "generator's or the held-out one's", "choices": VOCABS})
    threads: int = field(default=1, metadata={"help": "torch threads"})
    questions: str = field(default="independent", metadata={
        "help": "each question on its own from the state after the document (independent: how a memory is asked), "
                "or all at the end one after another (sequential: the first reader's scoring)",
        "choices": QUESTION_MODES})
    json: str = field(default="", metadata={"help": "also write the results to this JSON file"})

    def __post_init__(self) -> None:
        require_at_least(self, 1, "docs", "chunk", "threads")
        require_at_least(self, 0, "facts")
        if self.corpus not in CORPORA:
            raise ValueError(f"corpus must be one of {CORPORA}, got {self.corpus!r}")
        if self.questions not in QUESTION_MODES:
            raise ValueError(f"questions must be one of {QUESTION_MODES}, got {self.questions!r}")
        if self.vocab not in VOCABS:
            raise ValueError(f"vocab must be one of {VOCABS}, got {self.vocab!r}")


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
            check_fits(length, n_facts, task, cfg.questions)
        except ValueError as err:
            raise UserError(f"--lengths {length}: {err}") from None
    results = []
    print(f"{task.format} facts on {cfg.corpus} prose ({cfg.vocab} vocabulary), {n_facts} per document, "
          f"{cfg.questions} questions")
    print(f"{'length':>9} {'accuracy':>9} {'95% CI':>13} {'bytes':>6} {'answers':>8} {'seconds':>8} {'tokens/s':>9} "
          f"{'peak RSS':>9}")
    for length in args.lengths:
        r = evaluate_recall(model, length, task, n_docs=cfg.docs, n_facts=n_facts, chunk=cfg.chunk, seed=cfg.seed,
                            corpus=cfg.corpus, vocab=cfg.vocab, questions=cfg.questions)
        r["peak_rss_mb"] = peak_rss_bytes() / MIB
        results.append(r)
        low, high = r["ci95"]
        print(f"{length:>9,} {r['accuracy']:>9.3f} {f'{low:.2f}-{high:.2f}':>13} {r['byte_accuracy']:>6.3f} "
              f"{r['answers']:>8} {r['seconds']:>8.1f} {r['tokens_per_s']:>9,.0f} {r['peak_rss_mb']:>7.0f}MB",
              flush=True)
    if cfg.json:
        Path(cfg.json).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.json).write_text(json.dumps(results, indent=2))
