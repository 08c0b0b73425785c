"""python -m month1_transformer {train,sample} --help"""

from __future__ import annotations

from month1_transformer import sample, train
from shared.cli import run_subcommands


def main(argv: list[str] | None = None) -> None:
    run_subcommands(
        "python -m month1_transformer",
        "Month 1: a mini-Transformer (GPT) from scratch - train it on text, then sample from it.",
        {"train": train, "sample": sample},
        argv,
    )


if __name__ == "__main__":
    main()
