"""python -m month1_transformer {train,sample} --help"""

from __future__ import annotations

from shared.cli import Command, run_subcommands

COMMANDS = {
    "train": Command("month1_transformer.train", "train the mini-GPT on a corpus (resumable, loss-curve PNG)"),
    "sample": Command("month1_transformer.sample", "sample text from a checkpoint written by `train`"),
}


def main(argv: list[str] | None = None) -> None:
    run_subcommands("python -m month1_transformer",
                    "Month 1: a mini-Transformer (GPT) from scratch - train it on text, then sample from it.",
                    COMMANDS, argv)


if __name__ == "__main__":
    main()
