"""Month 3 benchmark: the selective scan's forms compared, and streaming memory at 10k vs 1M tokens.

Part 1 - scan throughput at training lengths (forward + backward, batch 8, d_inner 128, state 16,
median of --repeats): our sequential loop, our chunked parallel form (Hillis-Steele inside
chunks), the same loop fused in C++ (month3_mamba/fused_scan.py, where it builds), and
transformers' pure-PyTorch fallback of mamba-ssm's selective_scan_fn (when
installed); ratios against the sequential loop.

Part 2 - streaming: the committed recall model reads N tokens of prose in 2,048-token chunks,
each N in its own fresh process; peak RSS (VmHWM, shared.memory) at 10k and at 1M tokens, and their ratio
(target: within 10%).

    OMP_NUM_THREADS=1 python benchmarks/month3_scan.py
    OMP_NUM_THREADS=1 python benchmarks/month3_scan.py --lengths 256 512 --stream 10000 1000000
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from month3_mamba import fused_scan
from month3_mamba.scan import selective_scan


def scan_inputs(length: int, b: int = 8, d: int = 128, n: int = 16):
    g = torch.Generator().manual_seed(0)
    u = torch.randn(b, d, length, generator=g)
    delta = torch.randn(b, d, length, generator=g) * 0.5 - 2
    A = -torch.exp(torch.randn(d, n, generator=g) * 0.5)
    B, C = torch.randn(b, n, length, generator=g), torch.randn(b, n, length, generator=g)
    return u, delta, A, B, C


def time_fwd_bwd(fn, inputs, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):  # the first run warms up the allocator
        leaves = [t.clone().requires_grad_() for t in inputs]
        start = time.perf_counter()
        fn(*leaves).square().sum().backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def scan_variants() -> dict:
    variants = {
        "sequential": lambda *a: selective_scan(*a, delta_softplus=True, mode="sequential"),
        "chunked-32": lambda *a: selective_scan(*a, delta_softplus=True, mode="chunked", chunk_size=32),
        "chunked-128": lambda *a: selective_scan(*a, delta_softplus=True, mode="chunked", chunk_size=128),
    }
    if fused_scan.available():
        variants["fused"] = lambda *a: selective_scan(*a, delta_softplus=True, mode="fused")
    try:
        from transformers.models.mamba.modeling_mamba import mamba_selective_scan

        variants["transformers-ref"] = lambda *a: mamba_selective_scan(*a, delta_softplus=True)
    except ImportError:
        pass
    return variants


def bench_scans(lengths: list[int], repeats: int) -> list[dict]:
    """transformers' loop indexes dA[:, :, t]: its backward builds a full-size zero tensor per step
    (quadratic in length), so it runs only up to 512 tokens."""
    rows = []
    variants = scan_variants()
    header = " ".join(f"{name:>18}" for name in variants)
    print(f"{'length':>7} {header}   (tokens/s, fwd+bwd; x = speed vs sequential)")
    for length in lengths:
        inputs = scan_inputs(length)
        seconds = {name: time_fwd_bwd(fn, inputs, repeats) for name, fn in variants.items()
                   if name != "transformers-ref" or length <= 512}
        tokens = 8 * length
        cells = [f"{tokens / s:>9,.0f} ({seconds['sequential'] / s:4.2f}x)" for s in seconds.values()]
        print(f"{length:>7} " + " ".join(f"{c:>18}" for c in cells) + ("" if len(cells) == len(variants) else
              "   (transformers-ref skipped)"), flush=True)
        rows.append({"length": length, "seconds": seconds, "tokens_per_s": {k: tokens / s for k, s in seconds.items()}})
    return rows


def stream_child(n_tokens: int, chunk: int) -> None:
    """Runs in a fresh process: read n_tokens through the committed model; print JSON."""
    from month3_mamba.families import load_recall_model
    from month3_mamba.prose import corpus_text
    from month3_mamba.read import DEFAULT_CKPT, read_stream
    from shared.memory import MIB, peak_rss_bytes

    torch.set_num_threads(1)
    model, _ = load_recall_model(DEFAULT_CKPT)
    prose = corpus_text("pydoc").encode()

    def chunks():
        for start in range(0, n_tokens, chunk):
            offset = start % (len(prose) - chunk)
            yield prose[offset : offset + min(chunk, n_tokens - start)]

    baseline = peak_rss_bytes() / MIB
    result = read_stream(model, chunks(), progress=False)
    print(json.dumps({"tokens": result.n_bytes, "seconds": result.seconds, "tokens_per_s": result.tokens_per_s,
                      "peak_rss_mb": result.peak_rss_mb, "rss_before_mb": baseline,
                      "state_bytes": result.state_bytes}))


def bench_streaming(lengths: list[int], chunk: int) -> list[dict]:
    rows = []
    for n in lengths:
        out = subprocess.run([sys.executable, __file__, "--child", str(n), "--chunk", str(chunk)],
                             capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"streamed {n:>9,} tokens: {row['seconds']:7.1f} s, {row['tokens_per_s']:>8,.0f} tokens/s, "
              f"peak RSS {row['peak_rss_mb']:.0f} MB (after loading {row['rss_before_mb']:.0f} MB), "
              f"state {row['state_bytes'] / 1024:.0f} KiB", flush=True)
    ratio = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    print(f"peak RSS at {lengths[-1]:,} / at {lengths[0]:,} tokens: {ratio:.3f} (target <= 1.10)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stream", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--chunk", type=int, default=2048)
    parser.add_argument("--out", default="runs/bench_month3/scan.json")
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        stream_child(args.child, args.chunk)
        return
    torch.set_num_threads(1)
    results = {"scans": bench_scans(args.lengths, args.repeats) if args.lengths else [],
               "streaming": bench_streaming(args.stream, args.chunk) if args.stream else []}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
