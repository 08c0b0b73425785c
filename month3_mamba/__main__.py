"""python -m month3_mamba {read,make-doc,train-recall,eval-recall} --help"""

from __future__ import annotations

import argparse

from month3_mamba import eval_recall, make_doc, read, train_recall


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m month3_mamba",
        description="Month 3: state-space models and Mamba - reading files of 100k+ tokens in constant memory.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    commands = (("read", read), ("make-doc", make_doc), ("train-recall", train_recall), ("eval-recall", eval_recall))
    for name, module in commands:
        doc = module.__doc__ or ""
        p = sub.add_parser(name, help=doc.split("\n")[0], description=doc,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(run=module.main)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
