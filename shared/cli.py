"""The one command-line mechanism of every month: `python -m monthN_x COMMAND [options]`.

A month's `__main__` lists its subcommands as `{name: Command(module, help)}`. Each module
provides `add_arguments(parser)` and `main(args)`; it is imported only when its command
runs, so `--help` is instant and one command's heavy imports never slow another.

Every command takes `--config FILE` (a TOML preset; see `shared.config`); presets live in
the month's `configs/` folder and can be named without their path.

Expected user errors (a missing file, a checkpoint of another family, a bad option value)
are raised as `shared.errors.UserError` (or `FileNotFoundError` / `IsADirectoryError` /
`PermissionError`) and end as one line on stderr with exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

from shared.config import add_config_file_argument, parse_args
from shared.errors import UserError


@dataclass(frozen=True)
class Command:
    module: str
    help: str


# Raised by our own checks and by the standard library for unusable paths.
_USER_ERRORS = (UserError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def _message(err: BaseException) -> str:
    """The error as one line (a library's message may span several)."""
    if isinstance(err, OSError) and err.filename is not None:
        return f"{err.strerror or err}: {err.filename}"
    return " ".join(str(err).split())


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
    prog: str, description: str, commands: dict[str, Command], argv: list[str] | None = None
) -> None:
    """Parse `COMMAND [options]`, import that command's module, build its parser, run it."""
    argv = sys.argv[1:] if argv is None else argv
    top = argparse.ArgumentParser(
        prog=prog, description=f"{description} `{prog} COMMAND --help` shows a command's options."
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in commands.items():
        sub.add_parser(name, help=command.help, add_help=False)  # the module's own parser handles --help
    args, rest = top.parse_known_args(argv)
    name = args.command
    module = importlib.import_module(commands[name].module)
    parser = argparse.ArgumentParser(prog=f"{prog} {name}", description=module.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    presets = Path(module.__file__).resolve().parent / "configs"
    add_config_file_argument(parser, presets)
    try:
        module.main(parse_args(parser, rest, presets))
    except _USER_ERRORS as err:
        print(f"{prog} {name}: error: {_message(err)}", file=sys.stderr)
        raise SystemExit(2) from None
