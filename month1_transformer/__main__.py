"""python -m month1_transformer {train,sample} --help"""

from __future__ import annotations

import argparse

from month1_transformer import sample, train


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m month1_transformer",
        description="Month 1: a mini-Transformer (GPT) from scratch - train it on text, then sample from it.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in (("train", train), ("sample", sample)):
        doc = module.__doc__ or ""
        p = sub.add_parser(name, help=doc.split("\n")[0], description=doc,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(run=module.main)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
