"""Month 4 benchmark: our MoE layer against DeepSpeed's per training step, same model, same machine, one run.

The model of `python -m month4_moe train --config moe_lm` (month 1's GPT, 4 layers, width 96, 4 experts
top-1, capacity factor 1.25, batch 16 x 128 bytes), built twice from the same seeded weights: with our
MoELayer (sort/gather dispatch, and the one-hot einsum form), and with `deepspeed.moe.layer.MoE` trained
through `deepspeed.initialize` (1 rank, gloo, torch AdamW as the client optimizer, nothing compiled).
No z-loss (DeepSpeed has none). The steps alternate between the variants (A, B, C, A, B, C, ...) so that
a busy machine slows them alike; each variant sees the same batches. Reports the median ms per step, the
first losses of each (they agree: same weights, same gate maths), and DeepSpeed's import and initialize
times.

    OMP_NUM_THREADS=1 python benchmarks/month4_deepspeed.py
    OMP_NUM_THREADS=1 python benchmarks/month4_deepspeed.py --steps 60 --batch-size 16
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from month1_transformer.model import GPTConfig  # noqa: E402
from month4_moe.domains import DomainConfig, DomainData, make_domain_batches  # noqa: E402
from month4_moe.ds_train import DSRunConfig, build_model, distributed_setup  # noqa: E402
from month4_moe.layer import MoEConfig  # noqa: E402
from month4_moe.lm import MoEGPT, lm_loss  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", default="runs/bench_month4_deepspeed")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    start = time.perf_counter()
    deepspeed = distributed_setup(DSRunConfig())
    import_seconds = time.perf_counter() - start
    gpt = GPTConfig(vocab_size=256, block_size=128, n_layer=4, n_head=4, n_embd=96, bias=False)
    moe = MoEConfig(n_experts=4, top_k=1, z_loss_coef=0.0)
    run = DSRunConfig(seed=0)
    torch.manual_seed(run.seed)
    models = {"ours (sort)": MoEGPT(gpt, moe)}
    torch.manual_seed(run.seed)
    models["ours (einsum)"] = MoEGPT(gpt, MoEConfig(n_experts=4, top_k=1, z_loss_coef=0.0, dispatch="einsum"))
    ds_model = build_model(gpt, moe, run)
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.0) for name, m in models.items()}
    config = {"train_micro_batch_size_per_gpu": args.batch_size, "gradient_accumulation_steps": 1,
              "zero_optimization": {"stage": 0}, "gradient_clipping": 0.0, "steps_per_print": 10**9}
    start = time.perf_counter()
    engine, _, _, _ = deepspeed.initialize(model=ds_model, config=config,
                                           optimizer=torch.optim.AdamW(ds_model.parameters(), lr=1e-3,
                                                                       weight_decay=0.0))
    init_seconds = time.perf_counter() - start

    def ours_step(name):
        def step(batch):
            loss = lm_loss(models[name], batch)
            optimizers[name].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[name].step()
            return loss.item()
        return step

    def ds_step(batch):
        _, ce = engine(*batch)
        loss = ce + engine.module.aux_loss()
        engine.backward(loss)
        engine.step()
        return loss.item()

    steps = {"ours (sort)": ours_step("ours (sort)"), "ours (einsum)": ours_step("ours (einsum)"), "deepspeed": ds_step}
    data = DomainData.build(DomainConfig(), splits=("train", "val"))
    get_batch = make_domain_batches(data, DomainConfig().domain_list(), gpt.block_size, args.batch_size)
    gen = torch.Generator().manual_seed(0)
    times = {name: [] for name in steps}
    losses = {name: [] for name in steps}
    for _ in range(args.steps):
        batch = get_batch("train", gen)
        for name, step in steps.items():
            t = time.perf_counter()
            losses[name].append(step(batch))
            times[name].append(time.perf_counter() - t)
    base = statistics.median(times["deepspeed"][3:])
    print(f"\n{args.steps} steps of {args.batch_size} x {gpt.block_size} tokens, 1 thread, 1 rank, "
          f"{time.strftime('%Y-%m-%d')}; import torch+deepspeed {import_seconds:.1f} s, "
          f"deepspeed.initialize {init_seconds:.2f} s")
    print("| layer | ms / training step (median, first 3 skipped) | speed vs DeepSpeed | loss at steps 1, 2, 3 | "
          f"loss at step {args.steps} |")
    print("| --- | --- | --- | --- | --- |")
    results = {}
    for name in steps:
        ms = statistics.median(times[name][3:]) * 1e3
        results[name] = {"ms_per_step": ms, "losses": losses[name]}
        first = ", ".join(f"{v:.4f}" for v in losses[name][:3])
        print(f"| {name} | {ms:.0f} | {base * 1e3 / ms:.2f}x | {first} | {losses[name][-1]:.4f} |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({**results, "import_seconds": import_seconds,
                                                  "init_seconds": init_seconds}, indent=2))
    print(f"\n{out / 'results.json'}")


if __name__ == "__main__":
    main()
