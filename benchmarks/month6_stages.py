"""Month 6 benchmark: the cost of one request by stage (route, ground, decide, tools, generate, remember), p50 / p95
over a fixed request set, through the real HTTP API (the openai client against the live server on loopback).

The assistant of `make demo` (SmolLM2 + 4 expert adapters + the tool-call adapter, the router, the company
documents in Chroma, the transcript in SQLite). Each request's stages come from its trace; "http" is the
client's wall time less the stages (server, JSON, the client itself). Greedy, max_tokens 48.

    OMP_NUM_THREADS=1 python benchmarks/month6_stages.py
    OMP_NUM_THREADS=1 python benchmarks/month6_stages.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from month6_system.agent import build_assistant  # noqa: E402
from month6_system.app import create_app  # noqa: E402
from month6_system.company_docs import write_company_docs  # noqa: E402
from month6_system.demo import WEATHER_TOOL  # noqa: E402
from month6_system.serve import start_in_thread  # noqa: E402
from month6_system.settings import Settings  # noqa: E402
from shared.runtime import set_threads  # noqa: E402

REQUESTS = [  # (kind, text, tools)
    ("calculator", "What is 15 percent of 240?", []),
    ("calculator", "How many minutes are in 7 hours?", []),
    ("documents", "What is the hotel limit in Zurich?", []),
    ("documents", "How long must passwords be?", []),
    ("memory", "Do you remember my badge number?", []),
    ("client tool", "What is the weather in Paris?", [WEATHER_TOOL]),
    ("no tool", "Write a haiku about autumn.", []),
    ("no tool", "Give me three tips for a job interview.", []),
]
STAGES = ("route", "ground", "decide", "tools", "generate", "remember")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the request set (default 3)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_month6" / "stages.json")
    args = parser.parse_args()
    set_threads(args.threads)
    from openai import OpenAI

    data = Path(tempfile.mkdtemp(prefix="bench-month6-"))
    settings = Settings(data_dir=data)
    start = time.perf_counter()
    assistant = build_assistant(settings)
    load_s = time.perf_counter() - start
    assistant.rag.ingest(write_company_docs(data / "docs"), collection="default")
    assistant.storage.append_message("default", "setup", "user", "My badge number is K7Q2X.")
    server = start_in_thread(create_app(settings, assistant))
    client = OpenAI(base_url=server.url + "/v1", api_key="bench", max_retries=0, timeout=300)
    rows: list[dict] = []
    try:
        client.chat.completions.create(model=settings.model_name, messages=[{"role": "user", "content": "hi"}],
                                       max_tokens=8)  # warm-up
        for _ in range(args.rounds):
            for kind, text, tools in REQUESTS:
                t0 = time.perf_counter()
                response = client.chat.completions.create(
                    model=settings.model_name, messages=[{"role": "user", "content": text}], max_tokens=48,
                    **({"tools": tools} if tools else {}))
                wall = time.perf_counter() - t0
                stages = response.to_dict()["trace"]["stages_s"]
                rows.append({"kind": kind, "text": text, "wall_s": wall, **{s: stages.get(s, 0.0) for s in STAGES},
                             "http": wall - sum(stages.values())})
    finally:
        server.stop()
    print(f"{len(rows)} requests ({args.rounds} x {len(REQUESTS)}), {args.threads} thread(s), "
          f"{time.strftime('%Y-%m-%d')}; assistant loaded in {load_s:.1f} s")
    print("| request kind | n | " + " | ".join(f"{s} p50 / p95 (ms)" for s in (*STAGES, "http")) +
          " | total p50 / p95 (s) |")
    print("|---|---|" + "---|" * (len(STAGES) + 2))
    for kind in [*dict.fromkeys(k for k, _, _ in REQUESTS), "all"]:
        group = [r for r in rows if kind in ("all", r["kind"])]
        cells = []
        for stage in (*STAGES, "http"):
            values = [r[stage] * 1000 for r in group]
            cells.append(f"{percentile(values, 0.5):.0f} / {percentile(values, 0.95):.0f}")
        walls = [r["wall_s"] for r in group]
        print(f"| {kind} | {len(group)} | " + " | ".join(cells) +
              f" | {statistics.median(walls):.2f} / {percentile(walls, 0.95):.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"load_s": load_s, "threads": args.threads, "rows": rows}, indent=1) + "\n")
    print(args.out)


if __name__ == "__main__":
    main()
