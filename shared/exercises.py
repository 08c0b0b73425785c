"""Graded exercises, from the learner's side.

    python -m shared.exercises list                 # months, tasks, points
    python -m shared.exercises start month1         # writes my_work/month1_transformer.py
    pytest month1_transformer --impl my_work/month1_transformer.py      # grade it
    pytest month1_transformer --impl my_work/month1_transformer.py -m m1_t2   # one task
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
from pathlib import Path

from shared.grading import MONTHS, month_tasks, resolve_month


def stub_path(month: str) -> Path:
    spec = importlib.util.find_spec(month)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{month} is not importable; run `make setup` first")
    return Path(spec.origin).parent / "exercise_stub.py"


def start(month: str, directory: Path, force: bool) -> Path:
    month = resolve_month(month)
    source = stub_path(month)
    if not source.is_file() or not month_tasks(month):
        raise SystemExit(f"{month} has no graded exercises yet")
    target = directory / f"{month}.py"
    if target.exists() and not force:
        raise SystemExit(f"{target} exists; keep your work, or pass --force to overwrite it")
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def list_tasks() -> None:
    for month in MONTHS:
        tasks = month_tasks(month)
        if not tasks:
            print(f"{month}: no graded exercises yet")
            continue
        print(f"{month}: {len(tasks)} tasks, {sum(t.points for t in tasks)} points")
        for t in tasks:
            print(f"  {t.label:<9} -m {t.id:<6} {t.points:>3} pts  {t.title}  [{', '.join(t.names)}]")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m shared.exercises", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list months, tasks and points")
    begin = sub.add_parser("start", help="copy a month's stub file to work on")
    begin.add_argument("month", help="month1 ... month6 (or the folder name)")
    begin.add_argument("--dir", type=Path, default=Path("my_work"), help="where to write it (default: my_work)")
    begin.add_argument("--force", action="store_true", help="overwrite an existing file")
    args = parser.parse_args(argv)
    if args.command == "list":
        list_tasks()
    else:
        target = start(args.month, args.dir, args.force)
        month = resolve_month(args.month)
        print(f"wrote {target}\nimplement the tasks, then grade them with:\n"
              f"  pytest {month} --impl {target}\n  pytest {month} --impl {target} -m {month_tasks(month)[0].id}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
