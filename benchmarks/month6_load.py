"""Month 6 benchmark: latency and throughput of the real assistant under 1, 4 and 16 concurrent clients,
with generation batching off (`--batch-max-size 1`: requests decoded one at a time) and on (16), in one run.

Each setting is a fresh `python -m month6_system serve` process on loopback (torch threads as given); each
concurrency level sends the same `--requests` chat requests (greedy, `--max-tokens` each, prompts that need no
tool) through an asyncio httpx client keeping that many in flight. Reported per level: p50 and p95 latency,
requests/s and completion tokens/s, errors; then throughput at 16 clients with batching against sequential
(1 client, batching off). Bounded: a fixed number of requests, each with a timeout.

    OMP_NUM_THREADS=2 python benchmarks/month6_load.py
    OMP_NUM_THREADS=2 python benchmarks/month6_load.py --requests 32 --clients 1,4,16 --max-tokens 48
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
TOPICS = ["the sea", "a mountain", "coffee", "rain", "a library", "the moon", "trains", "a garden", "winter",
          "music", "a river", "bread", "the city at night", "a cat", "autumn leaves", "the desert"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(batch: int, threads: int, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "HYBRID_AI_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
           "HYBRID_RATE_LIMIT_PER_MINUTE": "0", "TOKENIZERS_PARALLELISM": "false"}
    process = subprocess.Popen([sys.executable, "-m", "month6_system", "serve", "--port", str(port),
                                "--data-dir", tempfile.mkdtemp(prefix="month6-load-"), "--batch-max-size", str(batch),
                                "--log-level", "warning"], env=env, stdout=log.open("a"), stderr=subprocess.STDOUT,
                               cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited; see {log}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit("the server did not get ready in 300 s")


async def level(url: str, clients: int, requests: int, max_tokens: int, timeout: float) -> dict:
    latencies: list[float] = []
    tokens, errors = 0, 0
    todo = list(range(requests))

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal tokens, errors
        while todo:
            i = todo.pop(0)
            body = {"model": "hybrid-assistant", "max_tokens": max_tokens, "temperature": 0,
                    "messages": [{"role": "user", "content": f"Write one sentence about {TOPICS[i % len(TOPICS)]}."}],
                    "metadata": {"conversation_id": f"load-{clients}-{i}"}}
            start = time.perf_counter()
            try:
                response = await http.post("/v1/chat/completions", json=body)
                response.raise_for_status()
                tokens += response.json()["usage"]["completion_tokens"]
                latencies.append(time.perf_counter() - start)
            except (httpx.HTTPError, KeyError):
                errors += 1

    start = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=timeout) as http:
        await asyncio.gather(*(worker(http) for _ in range(clients)))
    wall = time.perf_counter() - start
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))] if latencies else float("nan")
    return {"clients": clients, "requests": requests, "errors": errors, "wall_s": round(wall, 2),
            "p50_s": round(statistics.median(latencies), 2) if latencies else None, "p95_s": round(p95, 2),
            "requests_per_s": round(len(latencies) / wall, 3), "tokens_per_s": round(tokens / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=16, help="requests per concurrency level")
    parser.add_argument("--clients", default="1,4,16", help="concurrency levels, comma-separated")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the server")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one request may take")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_month6" / "load.json")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    log = args.out.with_suffix(".log")
    rows = []
    for batch in (1, 16):
        process, url = start_server(batch, args.threads, log)
        try:
            asyncio.run(level(url, 1, 2, args.max_tokens, args.timeout))  # warm-up, not counted
            for clients in levels:
                row = {"batch_max_size": batch, **asyncio.run(level(url, clients, args.requests, args.max_tokens,
                                                                    args.timeout))}
                rows.append(row)
                print(f"batch {batch:2}  clients {clients:2}  p50 {row['p50_s']:6.2f} s  p95 {row['p95_s']:6.2f} s  "
                      f"{row['requests_per_s']:6.3f} req/s  {row['tokens_per_s']:6.1f} tok/s  "
                      f"errors {row['errors']}", flush=True)
        finally:
            process.terminate()
            process.wait(timeout=60)
    sequential = next(r for r in rows if r["batch_max_size"] == 1 and r["clients"] == 1)
    batched = next(r for r in rows if r["batch_max_size"] == 16 and r["clients"] == max(levels))
    ratio = batched["requests_per_s"] / sequential["requests_per_s"]
    print(f"throughput at {max(levels)} clients with batching / sequential: {ratio:.2f}x "
          f"({batched['requests_per_s']:.3f} vs {sequential['requests_per_s']:.3f} req/s); "
          f"errors in all: {sum(r['errors'] for r in rows)}")
    args.out.write_text(json.dumps({"rows": rows, "ratio": round(ratio, 2), "threads": args.threads,
                                    "max_tokens": args.max_tokens}, indent=1) + "\n")
    print(args.out)


if __name__ == "__main__":
    main()
