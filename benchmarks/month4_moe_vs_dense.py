"""Month 4 benchmark: the MoE against dense models, side by side in one run, at equal training tokens.

Three models trained here with the same data, steps, batch and seed (month 1's GPT, 4 layers, width 96,
byte level, the four-domain mixture of month4_moe/domains.py):
- moe:          4 experts per layer, top-1 (Switch), expert MLP width 4 x 96;
- dense-active: an MLP of width 4 x 96: the parameters one token of the MoE uses;
- dense-total:  an MLP of width 16 x 96: the MoE's total parameters.
Reported: per-domain loss (held-out split and the second evaluation set), parameters, forward FLOPs
per token (counted by torch's FlopCounterMode), training tokens/s, and inference tokens/s on this CPU
(prefill: a batch of 8 x 128 tokens; decode: 1 sequence, KV cache, 112 new tokens), for the MoE with
both dispatch forms (sort/gather and the one-hot einsum) on the same weights.

    OMP_NUM_THREADS=1 python benchmarks/month4_moe_vs_dense.py                  # 400 steps each
    OMP_NUM_THREADS=1 python benchmarks/month4_moe_vs_dense.py --steps 1200

Trainings checkpoint in runs/bench_month4/<model>/ and resume. Prints a table and writes
runs/bench_month4/results.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from month1_transformer.model import GPTConfig  # noqa: E402
from month4_moe.domains import DOMAINS, DomainConfig, DomainData  # noqa: E402
from month4_moe.layer import MoEConfig  # noqa: E402
from month4_moe.lm import MoEGPT, analytic_flops_per_token, flops_batch, flops_per_token  # noqa: E402
from month4_moe.train import LM_TRAINING, LMRunConfig, train_lm  # noqa: E402
from shared.training import TrainConfig  # noqa: E402


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@torch.no_grad()
def inference_speed(model, block: int, repeats: int) -> dict[str, float]:
    """Tokens/s in eval mode; an MoE's aux losses and load metrics are off (pure inference)."""
    model.eval()
    if isinstance(model, MoEGPT):
        model.set_tracking(False)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (8, block), generator=g)
    prefill = median_seconds(lambda: model(x), repeats)
    prompt = torch.randint(0, 256, (1, 16), generator=g)
    new = block - 16
    decode = median_seconds(lambda: model.generate(prompt, new, temperature=1.0, generator=torch.Generator()),
                            max(1, repeats // 2))
    return {"prefill_tokens_per_s": x.numel() / prefill, "decode_tokens_per_s": new / decode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--out", default="runs/bench_month4")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--eval-tokens", type=int, default=8192)
    args = parser.parse_args()
    torch.set_num_threads(1)
    gpt = GPTConfig(vocab_size=256, block_size=128, n_layer=4, n_head=4, n_embd=96, bias=False)
    moe = MoEConfig(n_experts=4, top_k=1)
    train = TrainConfig(**{**LM_TRAINING, "max_steps": args.steps, "eval_interval": 0, "ckpt_interval": 100})
    data = DomainData.build(DomainConfig())
    flop_tokens = flops_batch(data, gpt.block_size)
    variants = {"moe": LMRunConfig(arch="moe", eval_tokens=args.eval_tokens),
                "dense-active": LMRunConfig(arch="dense", dense_hidden=4 * gpt.n_embd, eval_tokens=args.eval_tokens),
                "dense-total": LMRunConfig(arch="dense", dense_hidden=16 * gpt.n_embd, eval_tokens=args.eval_tokens)}
    rows = {}
    for name, run in variants.items():
        model, _, metrics = train_lm(replace(gpt), moe, replace(train, out_dir=f"{args.out}/{name}"), run,
                                     DomainConfig(), data=data, name=name)
        hidden = run.dense_hidden or 4 * gpt.n_embd
        metrics["analytic_flops_per_token"] = analytic_flops_per_token(gpt, hidden, 1, 4 if run.arch == "moe" else 0)
        metrics.update(inference_speed(model, gpt.block_size, args.repeats))
        rows[name] = metrics
        if isinstance(model, MoEGPT):  # the same weights, the one-hot dispatch
            for layer in model.moe_layers():
                layer.cfg.dispatch = "einsum"
            rows["moe (einsum dispatch)"] = {**metrics, "train_tokens_per_s": None,
                                             "flops_per_token": flops_per_token(model, flop_tokens),
                                             **inference_speed(model, gpt.block_size, args.repeats)}
            for layer in model.moe_layers():
                layer.cfg.dispatch = "sort"
    base = rows["dense-active"]
    print(f"\n{args.steps} steps x 16 x 128 bytes each ({args.steps * 2048:,} training tokens), 1 thread, "
          f"{time.strftime('%Y-%m-%d')}")
    header = ("| model | params (active) | FLOPs/token (counted) | " + " | ".join(DOMAINS)
              + " | mean val (second set) | train tok/s | prefill tok/s | decode tok/s |")
    print(header)
    print("|" + " --- |" * (header.count("|") - 1))
    for name, r in rows.items():
        val, other = r["val"], r["other"]
        mean_val, mean_other = (sum(v.values()) / len(v) for v in (val, other))
        print(f"| {name} | {r['params']['total'] / 1e6:.2f}M ({r['params']['active'] / 1e6:.2f}M) | "
              f"{r['flops_per_token'] / 1e6:.2f}M ({r['flops_per_token'] / base['flops_per_token']:.2f}x) | "
              + " | ".join(f"{val[d]:.3f}" for d in DOMAINS)
              + f" | {mean_val:.3f} ({mean_other:.3f}) | "
              + (f"{r['train_tokens_per_s']:,.0f}" if r["train_tokens_per_s"] else "-") + " | "
              f"{r['prefill_tokens_per_s']:,.0f} ({r['prefill_tokens_per_s'] / base['prefill_tokens_per_s']:.2f}x) | "
              f"{r['decode_tokens_per_s']:,.0f} ({r['decode_tokens_per_s'] / base['decode_tokens_per_s']:.2f}x) |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    print(f"\n{out / 'results.json'}")


if __name__ == "__main__":
    main()
