"""Month 1 benchmark: nanoGPT's CPU "baby GPT" on tiny Shakespeare, and what makes it faster.

Settings as nanoGPT's shakespeare_char CPU run: character-level, 90/10 split, 4 layers,
4 heads, 128 wide, block 64, batch 12, 2,000 iterations, dropout 0, no biases, lr 1e-3
cosine to 1e-4, warmup 100, AdamW beta2 0.99, weight decay 0.1, clip 1.0. Published
reference: val loss about 1.88 in about 3 minutes on a laptop CPU.

Each variant runs in its own process (clean thread settings), one after another:

    python benchmarks/month1_baby_gpt.py --data ../shared/data/tinyshakespeare.txt
    python benchmarks/month1_baby_gpt.py --data PATH --variants fused-2t explicit-2t --max-steps 200

Prints a table of final val loss (over 100 batches), wall time, tokens/s and the ratio
against the first variant, and writes it to runs/bench_month1/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

BASE = ["--n-layer", "4", "--n-head", "4", "--n-embd", "128", "--block-size", "64", "--batch-size", "12",
        "--dropout", "0", "--bias", "false", "--lr", "1e-3", "--min-lr", "1e-4", "--warmup-steps", "100",
        "--beta2", "0.99",
        "--eval-interval", "500", "--eval-batches", "100", "--ckpt-interval", "0", "--resume", "false",
        "--progress", "false"]

# nanoGPT's model has no biases (bias=False); "-bias" variants put them back.
VARIANTS = {
    "fused-1t": ["--fused-attention", "true", "--threads", "1"],
    "fused-2t": ["--fused-attention", "true", "--threads", "2"],
    "explicit-1t": ["--fused-attention", "false", "--threads", "1"],
    "fused-1t-compile": ["--fused-attention", "true", "--threads", "1", "--compile", "true"],
    "fused-1t-rope": ["--fused-attention", "true", "--threads", "1", "--pos-enc", "rope"],
    "fused-1t-bias": ["--fused-attention", "true", "--threads", "1", "--bias", "true"],
    "fused-2t-rope": ["--fused-attention", "true", "--threads", "2", "--pos-enc", "rope"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("TINY_SHAKESPEARE", "shakespeare"),
                        help="tiny Shakespeare file (or 'shakespeare' to use the cache / download)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--out", default="runs/bench_month1")
    args = parser.parse_args()

    results = []
    for name in args.variants:
        out_dir = Path(args.out) / name
        cmd = [sys.executable, "-m", "month1_transformer", "train", "--data", args.data, *BASE,
               "--max-steps", str(args.max_steps), "--out-dir", str(out_dir), *VARIANTS[name]]
        print(f"[bench] {name}: {' '.join(cmd[3:])}", flush=True)
        subprocess.run(cmd, check=True)
        metrics = json.loads((out_dir / "metrics.json").read_text())
        tokens = args.max_steps * 12 * 64
        results.append({"variant": name, "val_loss": metrics["val_loss"], "seconds": metrics["seconds"],
                        "tokens_per_s": tokens / metrics["seconds"]})
    base = results[0]["seconds"]
    print(f"\n{'variant':<18} {'val loss':>9} {'wall s':>8} {'tokens/s':>10} {'speed vs ' + results[0]['variant']:>18}")
    for r in results:
        print(f"{r['variant']:<18} {r['val_loss']:>9.4f} {r['seconds']:>8.1f} {r['tokens_per_s']:>10,.0f} "
              f"{base / r['seconds']:>17.2f}x")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
