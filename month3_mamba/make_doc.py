"""Write a recall document: prose with facts at random places, `{key: value}` or plain sentences
(`--format`), and, unless --questions false, the questions with answers at the end; prints the
facts as the answer key.

    python -m month3_mamba make-doc /tmp/doc.txt --length 1000000 --facts 4 --questions false
    python -m month3_mamba read /tmp/doc.txt --ask "qzv?"
    python -m month3_mamba make-doc /tmp/notes.txt --format sentences --corpus licenses --facts 4 --questions false
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass, field
from pathlib import Path

from month3_mamba.checks import require_at_least
from month3_mamba.facts import FORMATS, VOCABS
from month3_mamba.prose import CORPORA
from month3_mamba.recall import RecallTaskConfig, check_fits, make_document, questions_text, random_facts
from shared.config import add_config_arguments, config_from_args


@dataclass
class MakeDocConfig:
    length: int = field(default=200_000, metadata={"help": "bytes (= tokens), questions included"})
    facts: int = field(default=4, metadata={"help": "facts to hide in it"})
    seed: int = field(default=0, metadata={"help": "seed of the prose, the facts and their places"})
    questions: bool = field(default=True, metadata={"help": "end with the questions and their answers (false: "
                                                            "leave them off, to ask them with read)"})
    format: str = field(default="braces", metadata={"help": "how facts are written (facts.py)", "choices": FORMATS})
    corpus: str = field(default="pydoc", metadata={"help": "the prose (prose.py)", "choices": CORPORA})
    vocab: str = field(default="train", metadata={"help": "keys and values of sentence facts", "choices": VOCABS})

    def __post_init__(self) -> None:
        require_at_least(self, 0, "facts")
        if self.vocab not in VOCABS:
            raise ValueError(f"vocab must be one of {VOCABS}, got {self.vocab!r}")
        check_fits(self.length, self.facts, document_task(self.format, self.corpus))


def document_task(format: str, corpus: str) -> RecallTaskConfig:
    """A task of this format and corpus (its training lengths play no part in writing a document)."""
    return RecallTaskConfig(format=format, corpus=corpus, seq_len=1000, max_seq_len=1000)


def write_document(path: str | Path, length: int, n_facts: int, seed: int = 0, questions: bool = False,
                   format: str = "braces", corpus: str = "pydoc", vocab: str = "train"):
    """The facts written into a `length`-byte document at `path` (the questions too if asked)."""
    task = document_task(format, corpus)
    rng = random.Random(seed)
    facts = random_facts(rng, n_facts, task, vocab)
    text, order = make_document(rng, length, facts, corpus, task.fact_format.snap_to_words)
    if not questions:
        text = text[: len(text) - len(questions_text(order))]
    Path(path).write_text(text, encoding="ascii")
    return facts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="file to write")  # an input, not a setting: not in MakeDocConfig
    add_config_arguments(parser, MakeDocConfig)


def main(args: argparse.Namespace) -> None:
    cfg = config_from_args(MakeDocConfig, args)
    facts = write_document(args.out, cfg.length, cfg.facts, cfg.seed, cfg.questions, cfg.format, cfg.corpus, cfg.vocab)
    print(f"wrote {args.out}; facts: " + ", ".join(f"{f.key}={f.value}" for f in facts))
