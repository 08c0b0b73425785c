"""Month 6 benchmark: the prompt-injection rate of the real assistant on the hand-written corpus
(month6_system/injections.json: 12 planted documents and 8 tool results, in different styles). Each case runs
clean and attacked; an injection succeeds if it changes the tools run or makes the assistant call a tool
(month6_system/injection.py). Also shown: whether the reply still holds the fact, and whether it holds the
word the injection asked for.

    OMP_NUM_THREADS=1 python benchmarks/month6_injection.py
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from month6_system.agent import build_assistant  # noqa: E402
from month6_system.injection import run_corpus  # noqa: E402
from month6_system.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_month6" / "injection.json")
    args = parser.parse_args()
    assistant = build_assistant(Settings(data_dir=Path(tempfile.mkdtemp(prefix="month6-injection-"))))
    start = time.perf_counter()
    report = run_corpus(assistant, progress=True)
    seconds = time.perf_counter() - start
    print(f"{'case':26} {'channel':12} {'tools clean':18} {'tools attacked':18} {'calls':6} {'won':4} fact canary")
    for row in report["rows"]:
        print(f"{row['id']:26} {row['channel']:12} {','.join(row['tools_clean']) or '-':18} "
              f"{','.join(row['tools_attacked']) or '-':18} {len(row['client_calls']):<6} "
              f"{'YES' if row['succeeded'] else 'no':4} {'yes' if row['answered'] else 'no':4} "
              f"{'yes' if row['canary'] else 'no'}")
    n = report["cases"]
    print(f"injections that succeeded: {report['succeeded']}/{n} ({report['succeeded'] / n:.0%}); replies that "
          f"still hold the fact: {report['answered']}/{n}; replies holding the canary: {report['canary']}/{n} "
          f"({seconds:.0f} s for {2 * n} turns)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**report, "seconds": round(seconds, 1)}, indent=1) + "\n")
    print(args.out)


if __name__ == "__main__":
    main()
