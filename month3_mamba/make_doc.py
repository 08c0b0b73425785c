"""Write a recall document: prose with facts `{key: value}` at random places (and, unless
--no-questions, the questions with answers at the end); prints the facts as the answer key.

    python -m month3_mamba make-doc /tmp/doc.txt --length 1000000 --facts 4 --no-questions
    python -m month3_mamba read /tmp/doc.txt --ask "qzv?"
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from month3_mamba.recall import RecallTaskConfig, make_document, questions_text, random_facts


def write_document(path: str | Path, length: int, n_facts: int, seed: int = 0, questions: bool = False):
    """The facts written into a `length`-byte document at `path` (the questions too if asked)."""
    rng = random.Random(seed)
    facts = random_facts(rng, n_facts, RecallTaskConfig())
    text, order = make_document(rng, length, facts)
    if not questions:
        text = text[: len(text) - len(questions_text(order))]
    Path(path).write_text(text, encoding="ascii")
    return facts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="file to write")
    parser.add_argument("--length", type=int, default=200_000, help="bytes (= tokens), questions included")
    parser.add_argument("--facts", type=int, default=4, help="facts to hide in it")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-questions", dest="questions", action="store_false", help="leave the questions off")


def main(args: argparse.Namespace) -> None:
    facts = write_document(args.out, args.length, args.facts, args.seed, args.questions)
    print(f"wrote {args.out}; facts: " + ", ".join(f"{f.key}={f.value}" for f in facts))
