"""Command-line helpers shared by the months' `__main__` modules."""

from __future__ import annotations

import argparse
import importlib


def not_built_yet(package: str, argv: list[str] | None = None) -> None:
    """`python -m <package> --help` for a month whose code is still to come: say so, point to its README."""
    title = (importlib.import_module(package).__doc__ or package).strip().rstrip(".")
    parser = argparse.ArgumentParser(
        prog=f"python -m {package}",
        description=f"{title}. Not built yet: see {package}/README.md for what it will contain.",
    )
    parser.parse_args(argv)
    parser.print_help()
