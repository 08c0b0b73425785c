"""Month 3 benchmark: Mamba against month 1's Transformer on long sequences.

Part `speed`: tokens/s and peak RSS against sequence length, batch 1, inference. Mamba
(d_model 128, 4 layers, random weights) streams the sequence in 2,048-token chunks; month 1's
GPT of the same width and depth (4 heads, RoPE, fused SDPA) runs the whole sequence in one
forward pass. Every point runs in a fresh process with a time limit; the Transformer stops at
its first point over the limit or out of memory.

Part `recall` (the first, braces task; benchmarks/month3_memory.py measures the sentences task):
recall accuracy against document length, on `--corpus` prose with `--questions` scoring, for the
committed Mamba checkpoint and,
when their checkpoints exist, the hybrid and RWKV models trained on the same curriculum
(`train-recall --arch hybrid|rwkv`) and Transformers with their own recipe (`train-recall
--arch transformer`, learned positions or RoPE; commands in the README). A learned-position
Transformer sees only its last block_size bytes; the RoPE one runs on the whole document
(each point has a time limit).

Part `stdlib`: a small byte-level Mamba trained briefly on the standard library's sources
(the first 90%), then streamed over the held-out rest; per-position loss plotted.

    OMP_NUM_THREADS=1 python benchmarks/month3_long_context.py --parts speed recall stdlib
    OMP_NUM_THREADS=1 python benchmarks/month3_long_context.py --parts speed --lengths 1000 16000 --timeout 60

Writes runs/bench_month3/*.json and *.png.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import torch

OUT = Path("runs/bench_month3")
SPEED_WIDTH, SPEED_LAYERS = 128, 4


def speed_child(arch: str, length: int) -> dict:
    """Runs in a fresh process: one forward over `length` random bytes."""
    from month1_transformer.model import GPT, GPTConfig
    from month3_mamba.model import MambaConfig, MambaLM
    from shared.memory import MIB, peak_rss_bytes

    torch.set_num_threads(1)
    torch.manual_seed(0)
    ids = torch.randint(0, 256, (1, length))
    start = time.perf_counter()
    with torch.no_grad():
        if arch == "mamba":
            model = MambaLM(MambaConfig(d_model=SPEED_WIDTH, n_layer=SPEED_LAYERS)).eval()
            state = model.new_state(1)
            start = time.perf_counter()
            for a in range(0, length, 2048):
                model(ids[:, a : a + 2048], state=state)
        else:
            cfg = GPTConfig(vocab_size=256, block_size=length, n_layer=SPEED_LAYERS, n_head=4, n_embd=SPEED_WIDTH,
                            pos_enc="rope", norm="rmsnorm", bias=False, fused_attention=True)
            model = GPT(cfg).eval()
            start = time.perf_counter()
            model(ids)
    seconds = time.perf_counter() - start
    return {"arch": arch, "length": length, "seconds": seconds, "tokens_per_s": length / seconds,
            "peak_rss_mb": peak_rss_bytes() / MIB}


def run_child(args: list[str], timeout: float) -> dict | None:
    try:
        out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1][:200]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def part_speed(lengths: list[int], timeout: float) -> dict:
    from shared.plotting import plot_series

    results: dict[str, list[dict]] = {"mamba": [], "transformer": []}
    for arch in results:
        for length in lengths:
            row = run_child(["speed", arch, str(length)], timeout)
            line = row["error"] if "error" in row else (
                f"{row['seconds']:.1f} s {row['tokens_per_s']:>8,.0f} tokens/s  peak RSS {row['peak_rss_mb']:.0f} MB")
            print(f"[speed] {arch:<11} {length:>9,}: {line}", flush=True)
            if "error" in row:
                break
            results[arch].append(row)
    series_tps = {a: ([r["length"] for r in rs], [r["tokens_per_s"] for r in rs]) for a, rs in results.items() if rs}
    series_mem = {a: ([r["length"] for r in rs], [r["peak_rss_mb"] for r in rs]) for a, rs in results.items() if rs}
    plot_series(series_tps, OUT / "speed_tokens_per_s.png", "sequence length (tokens)", "tokens/s",
                f"inference, d{SPEED_WIDTH} x {SPEED_LAYERS} layers, 1 CPU thread", logx=True, logy=True)
    plot_series(series_mem, OUT / "speed_peak_rss.png", "sequence length (tokens)", "peak RSS (MB)",
                "peak memory: Mamba streamed vs Transformer full forward", logx=True, logy=True)
    return results


def recall_child(ckpt: str, length: int, docs: int, facts: int, corpus: str, questions: str) -> dict:
    from month3_mamba.families import load_recall_model
    from month3_mamba.recall import evaluate_recall

    torch.set_num_threads(1)
    model, task = load_recall_model(ckpt)
    return evaluate_recall(model, length, task, n_docs=docs, n_facts=facts, chunk=2048, seed=0, corpus=corpus,
                           questions=questions)


def part_recall(lengths: list[int], docs: int, facts: int, timeout: float, checkpoints: dict[str, str],
                corpus: str, questions: str) -> dict:
    from shared.plotting import plot_series

    results: dict[str, list[dict]] = {}
    for name, ckpt in checkpoints.items():
        if not Path(ckpt).exists():
            print(f"[recall] {name}: no checkpoint at {ckpt}, skipped")
            continue
        results[name] = []
        for length in lengths:
            row = run_child(["recall", ckpt, str(length), str(docs), str(facts), corpus, questions], timeout)
            print(f"[recall] {name:<22} {length:>9,}: " + (row["error"] if "error" in row else
                  f"accuracy {row['accuracy']:.3f} (bytes {row['byte_accuracy']:.3f}, {row['answers']} answers, "
                  f"{row['seconds']:.1f} s)"), flush=True)
            if "error" in row:
                break
            results[name].append(row)
    plot_series({n: ([r["length"] for r in rs], [r["accuracy"] for r in rs]) for n, rs in results.items() if rs},
                OUT / "recall_vs_length.png", "document length (bytes = tokens)", "exact-match recall accuracy",
                f"recall of {facts} facts in {corpus} prose ({questions} questions)", logx=True)
    return results


def part_stdlib(train_steps: int, eval_bytes: int) -> dict:
    """Train a byte-level Mamba on stdlib code briefly, stream the held-out part, per-position loss."""
    import torch.nn.functional as F

    from month1_transformer.data import make_get_batch, split_ids
    from month3_mamba.model import MambaConfig, MambaLM
    from shared.corpora import stdlib_code
    from shared.plotting import plot_series
    from shared.training import TrainConfig, Trainer

    torch.set_num_threads(1)
    text = stdlib_code().encode("utf-8", errors="replace")
    train_ids, held_out = split_ids(list(text), 0.1)
    val_ids = held_out[:100_000]
    model = MambaLM(MambaConfig(d_model=128, n_layer=2, d_conv=4))
    cfg = TrainConfig(max_steps=train_steps, lr=3e-3, min_lr=3e-4, warmup_steps=50, eval_interval=0,
                      ckpt_interval=100, out_dir=str(OUT / "stdlib_lm"), progress=False)
    trainer = Trainer(model, make_get_batch(train_ids, val_ids, 256, 8), cfg)
    history = trainer.fit()
    print(f"[stdlib] trained {trainer.step} steps in {history.seconds:.0f} s on {len(train_ids):,} bytes; "
          f"final loss {sum(history.loss[-50:]) / len(history.loss[-50:]):.3f} nats/byte", flush=True)
    model.eval()
    stream = held_out[:eval_bytes][None]
    state, losses = model.new_state(1), []
    start = time.perf_counter()
    with torch.no_grad():
        for a in range(0, stream.size(1) - 1, 2048):
            x, y = stream[:, a : a + 2048], stream[:, a + 1 : a + 2049]
            logits, _ = model(x[:, : y.size(1)], state=state)
            losses.append(F.cross_entropy(logits[0], y[0], reduction="none"))
    per_position = torch.cat(losses) / math.log(2)  # bits per byte
    seconds = time.perf_counter() - start
    buckets = [2**i for i in range(4, int(math.log2(per_position.numel())) + 1)]
    xs, ys = [], []
    for lo, hi in zip([0, *buckets[:-1]], buckets):
        xs.append(hi)
        ys.append(per_position[lo:hi].mean().item())
    plot_series({"byte-level Mamba, streamed": (xs, ys)}, OUT / "stdlib_per_position_loss.png",
                "position in the held-out stdlib stream (bytes; bucket end)", "loss (bits/byte, bucket mean)",
                f"per-position loss over {per_position.numel():,} bytes of unseen stdlib code", logx=True)
    first, last = per_position[:100_000].mean().item(), per_position[-100_000:].mean().item()
    print(f"[stdlib] streamed {per_position.numel():,} bytes in {seconds:.0f} s; bits/byte: first 100k {first:.3f}, "
          f"last 100k {last:.3f}, all {per_position.mean().item():.3f}", flush=True)
    return {"train_seconds": history.seconds, "steps": trainer.step, "bytes": per_position.numel(),
            "bits_per_byte": per_position.mean().item(), "first_100k": first, "last_100k": last,
            "buckets": list(zip(xs, ys))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=["speed", "recall", "stdlib"],
                        choices=["speed", "recall", "stdlib"])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1000, 4000, 16000, 64000, 256000, 1000000])
    parser.add_argument("--recall-lengths", type=int, nargs="+", default=[256, 512, 1000, 8000, 64000, 128000])
    parser.add_argument("--docs", type=int, default=8)
    parser.add_argument("--facts", type=int, default=2, help="facts per recall document")
    parser.add_argument("--corpus", default="licenses", help="prose of the recall documents (month3_mamba/prose.py)")
    parser.add_argument("--questions", default="independent", choices=["independent", "sequential"])
    parser.add_argument("--timeout", type=float, default=600, help="seconds per point")
    parser.add_argument("--mamba-ckpt", default="month3_mamba/checkpoints/recall.pt")
    parser.add_argument("--mamba-phase1-ckpt", default="runs/month3_recall/phase1_recall.pt")
    parser.add_argument("--hybrid-ckpt", default="runs/month3_recall_hybrid/recall.pt")
    parser.add_argument("--hybrid-w32-ckpt", default="runs/month3_recall_hybrid_w32/recall.pt")
    parser.add_argument("--rwkv-ckpt", default="runs/month3_recall_rwkv/recall.pt")
    parser.add_argument("--gpt-learned-ckpt", default="runs/month3_recall_gpt_learned_tuned/ckpt.pt")
    parser.add_argument("--gpt-rope-ckpt", default="runs/month3_recall_gpt_rope_tuned/ckpt.pt")
    parser.add_argument("--stdlib-steps", type=int, default=400)
    parser.add_argument("--stdlib-bytes", type=int, default=1_000_000)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "speed":
            row = speed_child(rest[0], int(rest[1]))
        else:
            row = recall_child(rest[0], int(rest[1]), int(rest[2]), int(rest[3]), rest[4], rest[5])
        print(json.dumps(row))
        return
    OUT.mkdir(parents=True, exist_ok=True)
    results = {}
    if "speed" in args.parts:
        results["speed"] = part_speed(args.lengths, args.timeout)
    if "recall" in args.parts:
        checkpoints = {"mamba (committed)": args.mamba_ckpt, "mamba, phase 1 only (<= 512)": args.mamba_phase1_ckpt,
                       "hybrid, window 256": args.hybrid_ckpt,
                       "hybrid, window 32": args.hybrid_w32_ckpt, "rwkv": args.rwkv_ckpt,
                       "transformer, learned pos.": args.gpt_learned_ckpt, "transformer, RoPE": args.gpt_rope_ckpt}
        results["recall"] = part_recall(args.recall_lengths, args.docs, args.facts, args.timeout, checkpoints,
                                        args.corpus, args.questions)
    if "stdlib" in args.parts:
        results["stdlib"] = part_stdlib(args.stdlib_steps, args.stdlib_bytes)
    for part, data in results.items():
        (OUT / f"long_context_{part}.json").write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
