"""Month 6 benchmark (#14): the assistant as a Ray Serve application with 1 and then 2 replicas on this machine,
the same load against each, measured in one run.

A local Ray (loopback, `--cpus` CPUs) and a throwaway PostgreSQL server that the replicas share (the transcript,
traces, keys, rate limits: what makes them stateless); the app deployed with 1 replica of `--threads` torch
threads, then redeployed with 2 replicas of `--threads // 2` each, so both use the same cores. Each concurrency
level sends the same `--requests` chat requests (greedy, `--max-tokens`, prompts that need no tool) through
month6_load.py's asyncio client with that many in flight: p50 / p95 latency, requests/s, tokens/s, errors.
Then the ratio 2 replicas / 1 replica at the highest level. Bounded: a fixed number of requests, each with a
timeout; loopback only.

    OMP_NUM_THREADS=1 python benchmarks/month6_scale.py
    python benchmarks/month6_scale.py --clients 1,4,16 --requests 16 --assistant month6_system.tests.test_ray:scripted
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import httpx
from month6_load import level  # benchmarks/ is the script's folder

from month6_system import ray_serve
from month6_system.settings import Settings
from shared.postgres_server import free_port, temporary_postgres

ROOT = Path(__file__).resolve().parent.parent


def wait_ready(url: str, replicas: int, timeout_s: float = 600) -> float:
    """Seconds until /readyz answers 200 on 8 x replicas requests in a row (Serve spreads them: all replicas)."""
    start, streak = time.perf_counter(), 0
    while streak < 8 * replicas:
        if time.perf_counter() - start > timeout_s:
            raise SystemExit(f"the replicas were not ready in {timeout_s:.0f} s")
        try:
            streak = streak + 1 if httpx.get(url + "/readyz", timeout=10).status_code == 200 else 0
        except httpx.TransportError:
            streak = 0
        if not streak:
            time.sleep(1)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=16, help="requests per concurrency level")
    parser.add_argument("--clients", default="1,4,16", help="concurrency levels, comma-separated")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the single replica (2 replicas: "
                                                               "half each)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one request may take")
    parser.add_argument("--assistant", default="", help="module:callable for the replicas' assistant (default: "
                                                        "the real one)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_month6" / "scale.json")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with temporary_postgres() as database_url:
        settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="month6-scale-")), port=free_port(),
                            database_url=database_url, rate_limit_per_minute=0, log_level="warning")
        try:
            for replicas in (1, 2):
                threads = max(1, args.threads // replicas)
                scale = ray_serve.ScaleConfig(replicas=replicas, threads=threads, num_cpus=args.cpus / replicas,
                                              assistant=args.assistant)
                url = ray_serve.start_local(settings, scale, num_cpus=args.cpus)
                ready = wait_ready(url, replicas)
                print(f"{replicas} replica(s) x {threads} thread(s): ready in {ready:.0f} s", flush=True)
                asyncio.run(level(url, replicas, 2 * replicas, args.max_tokens, args.timeout))  # warm-up
                for clients in levels:
                    row = {"replicas": replicas, "threads": threads,
                           **asyncio.run(level(url, clients, args.requests, args.max_tokens, args.timeout))}
                    rows.append(row)
                    print(f"replicas {replicas}  clients {clients:2}  p50 {row['p50_s']:6.2f} s  "
                          f"p95 {row['p95_s']:6.2f} s  {row['requests_per_s']:6.3f} req/s  "
                          f"{row['tokens_per_s']:6.1f} tok/s  errors {row['errors']}", flush=True)
                from ray import serve

                serve.delete("assistant")
        finally:
            ray_serve.stop()
    top = max(levels)
    one, two = (next(r for r in rows if r["replicas"] == n and r["clients"] == top) for n in (1, 2))
    ratio = two["requests_per_s"] / one["requests_per_s"]
    print(f"throughput at {top} clients, 2 replicas / 1 replica: {ratio:.2f}x ({two['requests_per_s']:.3f} vs "
          f"{one['requests_per_s']:.3f} req/s); errors in all: {sum(r['errors'] for r in rows)}")
    args.out.write_text(json.dumps({"rows": rows, "ratio": round(ratio, 2), "cpus": args.cpus,
                                    "max_tokens": args.max_tokens, "assistant": args.assistant or "real"},
                                   indent=1) + "\n")
    print(args.out)


if __name__ == "__main__":
    main()
