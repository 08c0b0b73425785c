"""Command-line helpers shared by the months' `__main__` modules."""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType


def not_built_yet(package: str, argv: list[str] | None = None) -> None:
    """`python -m <package> --help` for a month whose code is still to come: say so, point to its README."""
    title = (importlib.import_module(package).__doc__ or package).strip().rstrip(".")
    parser = argparse.ArgumentParser(
        prog=f"python -m {package}",
        description=f"{title}. Not built yet: see {package}/README.md for what it will contain.",
    )
    parser.parse_args(argv)
    parser.print_help()


def run_subcommands(
    prog: str, description: str, commands: dict[str, ModuleType], argv: list[str] | None = None
) -> None:
    """A month's `python -m` entry: one subcommand per module, each module providing
    `add_arguments(parser)` and `main(args)`; the module docstring becomes the help."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in commands.items():
        doc = module.__doc__ or ""
        p = sub.add_parser(name, help=doc.split("\n")[0], description=doc,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(run=module.main)
    args = parser.parse_args(argv)
    args.run(args)
