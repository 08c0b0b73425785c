"""python -m month3_mamba {read,make-doc,train-recall,eval-recall} --help"""

from __future__ import annotations

from month3_mamba import eval_recall, make_doc, read, train_recall
from shared.cli import run_subcommands


def main(argv: list[str] | None = None) -> None:
    run_subcommands(
        "python -m month3_mamba",
        "Month 3: state-space models and Mamba - reading files of 100k+ tokens in constant memory.",
        {"read": read, "make-doc": make_doc, "train-recall": train_recall, "eval-recall": eval_recall},
        argv,
    )


if __name__ == "__main__":
    main()
