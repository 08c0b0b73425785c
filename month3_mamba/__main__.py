"""python -m month3_mamba {read,make-doc,train-recall,eval-recall} --help"""

from __future__ import annotations

from shared.cli import Command, run_subcommands

COMMANDS = {
    "read": Command("month3_mamba.read", "stream a long file through a trained reader in constant memory"),
    "make-doc": Command("month3_mamba.make_doc", "write a long document with planted facts and questions"),
    "train-recall": Command("month3_mamba.train_recall", "train a recall model (five families)"),
    "eval-recall": Command("month3_mamba.eval_recall", "exact recall of planted facts against document length"),
}


def main(argv: list[str] | None = None) -> None:
    run_subcommands("python -m month3_mamba",
                    "Month 3: state-space models and Mamba - reading files of 100k+ tokens in constant memory.",
                    COMMANDS, argv)


if __name__ == "__main__":
    main()
