"""Month 1 benchmark: nanoGPT's CPU "baby GPT" on tiny Shakespeare, ours against nanoGPT's own train.py.

Settings (`month1_transformer/configs/baby_gpt.toml`, nanoGPT's CPU command): character level,
90/10 split, 4 layers, 4 heads, 128 wide, block 64, batch 12, 2,000 iterations, dropout 0, no
biases, lr 1e-3 cosine to 1e-4, warmup 100, AdamW beta2 0.99, weight decay 0.1, clip 1.0.

Each variant runs in its own process. `--parallel 2` runs two at a time, each pinned to its own
core (side by side, as the comparison was first made); otherwise one after another. `nanogpt-*`
variants need a checkout of karpathy/nanoGPT (`--nanogpt DIR`; nothing of it is copied here):

    python benchmarks/month1_baby_gpt.py --data ../shared/data/tinyshakespeare.txt \\
        --nanogpt /tmp/nanogpt --variants nanogpt-1t ours-1t --parallel 2
    python benchmarks/month1_baby_gpt.py --data PATH --nanogpt DIR --variants nanogpt-2t ours-2t
    python benchmarks/month1_baby_gpt.py --sections steps --nanogpt DIR   # ms/step of each speed change
    python benchmarks/month1_baby_gpt.py --sections attention     # CPU SDPA, fp32 vs bf16

Every model is scored twice: by its own trainer (ours: 100 random batches; nanoGPT: 20), and by
this script on the whole validation split (1,742 windows of 64 characters, the same for every
model), which is the column to compare. Wall time is the whole process, start-up included, for
both. Prints a table and writes runs/bench_month1/results.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STEPS, BATCH, BLOCK = 2000, 12, 64
# Ours: the preset plus a variant's own flags.
OURS = {
    "ours-1t": ["--threads", "1"],
    "ours-2t": ["--threads", "2"],
    "ours-fp32-1t": ["--threads", "1", "--precision", "fp32"],
    "ours-explicit-1t": ["--threads", "1", "--precision", "fp32", "--fused-attention", "false",
                         "--fused-norm", "false"],
    "ours-rope-1t": ["--threads", "1", "--pos-enc", "rope"],
}
NANOGPT = {"nanogpt-1t": 1, "nanogpt-2t": 2}
# nanoGPT's own CPU command for the baby GPT (its README), checkpointing the final model.
NANOGPT_ARGS = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=20",
                "--log_interval=100", "--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4",
                "--n_embd=128", "--max_iters=2000", "--lr_decay_iters=2000", "--dropout=0.0",
                "--always_save_checkpoint=True"]


def threads_of(variant: str) -> int:
    return int(re.search(r"(\d)t(@|$)", variant).group(1))


def launch(run: str, args: argparse.Namespace, core: int | None) -> tuple[subprocess.Popen, Path]:
    variant, _, seed = run.partition("@")
    out = Path(args.out).resolve() / run
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    threads = str(threads_of(variant))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    if variant in NANOGPT:
        data = Path(args.nanogpt) / "data" / "shakespeare_char"
        if not (data / "train.bin").exists():
            shutil.copy(args.data, data / "input.txt")
            subprocess.run([sys.executable, "prepare.py"], cwd=data, check=True, capture_output=True)
        cmd = [sys.executable, "train.py", *NANOGPT_ARGS, f"--out_dir={out}"]
        cwd = args.nanogpt
    else:
        cmd = [sys.executable, "-m", "month1_transformer", "train", "--config", "baby_gpt", "--data", args.data,
               "--max-steps", str(args.max_steps), "--resume", "false", "--progress", "false",
               "--out-dir", str(out), *(["--seed", seed] if seed else []), *OURS[variant]]
        cwd = ROOT
    print(f"[bench] {run}{f' on core {core}' if core is not None else ''}: {' '.join(cmd[1:])}", flush=True)
    pin = (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
    log = open(out / "log.txt", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=pin)
    proc.start_time = time.perf_counter()  # type: ignore[attr-defined]
    return proc, out


@torch.no_grad()
def full_val_loss(model: torch.nn.Module, val: torch.Tensor, forward) -> float:
    """Mean next-token loss over every non-overlapping window of the validation split."""
    n = (len(val) - 1) // BLOCK
    x = val[: n * BLOCK].view(n, BLOCK)
    y = val[1 : n * BLOCK + 1].view(n, BLOCK)
    total = 0.0
    for i in range(0, n, 128):
        logits = forward(x[i : i + 128])
        total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), y[i : i + 128].reshape(-1),
                                 reduction="sum").item()
    return total / (n * BLOCK)


def score_ours(out: Path, text: str) -> tuple[float, float]:
    from month1_transformer.data import split_ids
    from month1_transformer.sample import load_model

    model, tokenizer = load_model(str(out / "ckpt.pt"))
    _, val = split_ids(tokenizer.encode(text), 0.1)
    metrics = json.loads((out / "metrics.json").read_text())
    return metrics["val_loss"], full_val_loss(model, val, lambda x: model(x)[0])


def score_nanogpt(out: Path, args: argparse.Namespace) -> tuple[float, float]:
    import numpy as np

    sys.path.insert(0, str(Path(args.nanogpt).resolve()))
    from model import GPT, GPTConfig  # nanoGPT's model.py, from the checkout

    ckpt = torch.load(out / "ckpt.pt", map_location="cpu", weights_only=False)  # nanoGPT's own file format
    model = GPT(GPTConfig(**ckpt["model_args"]))
    model.load_state_dict(ckpt["model"])
    model.eval()
    val = np.fromfile(Path(args.nanogpt) / "data" / "shakespeare_char" / "val.bin", dtype=np.uint16)
    val = torch.from_numpy(val.astype(np.int64))
    # nanoGPT's forward returns the last position's logits only without targets: pass dummy targets.
    loss = full_val_loss(model, val, lambda x: model(x, torch.zeros_like(x))[0])
    own = re.findall(r"step 2000: train loss [\d.]+, val loss ([\d.]+)", (out / "log.txt").read_text())
    return float(own[-1]) if own else math.nan, loss


def run_variants(args: argparse.Namespace) -> list[dict]:
    text = Path(args.data).read_text(encoding="utf-8")
    # nanoGPT's seed is fixed in its train.py; ours run once per --seeds entry ("variant@seed").
    pending = [v if v in NANOGPT or not args.seeds else f"{v}@{seed}" for v in args.variants
               for seed in ([None] if v in NANOGPT or not args.seeds else args.seeds)]
    results = []
    while pending:
        batch = [pending.pop(0) for _ in range(min(args.parallel, len(pending)))]
        cores = sorted(os.sched_getaffinity(0))
        running = [(v, *launch(v, args, cores[i] if args.parallel > 1 else None)) for i, v in enumerate(batch)]
        ended: dict[str, float] = {}
        while len(ended) < len(running):  # each process's own end time, whichever ends first
            for variant, proc, _ in running:
                if variant not in ended and proc.poll() is not None:
                    ended[variant] = time.perf_counter()
            time.sleep(0.05)
        for run, proc, out in running:
            if proc.returncode:
                raise SystemExit(f"[bench] {run} failed; see {out / 'log.txt'}")
            wall = ended[run] - proc.start_time
            variant = run.partition("@")[0]
            own, full = score_nanogpt(out, args) if variant in NANOGPT else score_ours(out, text)
            loop = (json.loads((out / "metrics.json").read_text())["seconds"] if variant in OURS else math.nan)
            results.append({"variant": run, "threads": threads_of(variant), "own_val_loss": own,
                            "full_val_loss": full, "process_s": wall, "train_loop_s": loop,
                            "tokens_per_s": args.max_steps * BATCH * BLOCK / wall, "together_with": batch})
    return results


def print_table(results: list[dict]) -> None:
    ref = {r["threads"]: r["process_s"] for r in results if r["variant"] in NANOGPT}
    ours = [r["full_val_loss"] for r in results if r["variant"] not in NANOGPT]
    print(f"\n{'variant':<18} {'own val':>8} {'full val':>9} {'process s':>10} {'loop s':>7} {'tokens/s':>9} "
          f"{'time / nanoGPT':>15}")
    for r in results:
        ratio = r["process_s"] / ref[r["threads"]] if r["threads"] in ref else math.nan
        print(f"{r['variant']:<18} {r['own_val_loss']:>8.4f} {r['full_val_loss']:>9.4f} {r['process_s']:>10.1f} "
              f"{r['train_loop_s']:>7.1f} {r['tokens_per_s']:>9,.0f} {ratio:>14.2f}x")
    if len(ours) > 1:
        mean = sum(ours) / len(ours)
        sd = math.sqrt(sum((x - mean) ** 2 for x in ours) / (len(ours) - 1))
        print(f"ours, {len(ours)} runs: full val {mean:.4f} +- {sd:.4f} (sd)")


def attention_section() -> None:
    """CPU SDPA forward + backward at the baby GPT's shape, fp32 against bf16 (why attention stays fp32)."""
    torch.set_num_threads(1)
    for dtype in (torch.float32, torch.bfloat16):
        q, k, v = (torch.randn(BATCH, 4, BLOCK, 32, dtype=dtype, requires_grad=True) for _ in range(3))
        best = math.inf
        for rep in range(6):
            start = time.perf_counter()
            for _ in range(50):
                F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()
            if rep:  # the first repetition warms up
                best = min(best, (time.perf_counter() - start) / 50)
        print(f"[attention] SDPA fwd+bwd {tuple(q.shape)} {str(dtype):>15}: {best * 1e3:.2f} ms")


def steps_section(nanogpt: str | None) -> None:
    """ms per training step for each speed change, built up one at a time, in one process: the
    variants take turns (8 rounds of 15 steps, the best round counts), so load hits them alike."""
    from month1_transformer.model import GPT, GPTConfig
    from shared.training import TrainConfig, autocast_dtype, make_adamw, train_step, with_autocast

    torch.set_num_threads(1)
    cfg = dict(vocab_size=65, n_layer=4, n_head=4, n_embd=128, block_size=BLOCK, bias=False)
    train_cfg = TrainConfig(weight_decay=0.1)

    def ours(fused_norm: bool, fused_adamw: bool, precision: str):
        torch.manual_seed(0)
        model = GPT(GPTConfig(**cfg, fused_norm=fused_norm))
        opt = make_adamw(model, train_cfg)
        if not fused_adamw:
            opt = torch.optim.AdamW(opt.param_groups, lr=1e-3, betas=(0.9, 0.99))
        loss = with_autocast(lambda m, b: m(*b)[1], torch.device("cpu"), autocast_dtype(precision, torch.device("cpu")))
        return model, opt, loss

    variants = {
        "fp32, from-scratch norms, AdamW": lambda: ours(False, False, "fp32"),
        "+ fused norms": lambda: ours(True, False, "fp32"),
        "+ fused AdamW": lambda: ours(True, True, "fp32"),
        "+ bf16 autocast (default)": lambda: ours(True, True, "bf16"),
    }
    if nanogpt:
        sys.path.insert(0, str(Path(nanogpt).resolve()))
        from model import GPT as NanoGPT
        from model import GPTConfig as NanoConfig

        def nano():
            torch.manual_seed(0)
            model = NanoGPT(NanoConfig(**{**cfg, "dropout": 0.0}))
            return model, model.configure_optimizers(0.1, 1e-3, (0.9, 0.99), "cpu"), lambda m, b: m(*b)[1]

        variants = {"nanoGPT (its model and optimizer)": nano, **variants}
    built = {name: make() for name, make in variants.items()}
    gen = torch.Generator().manual_seed(0)
    batch = (torch.randint(0, 65, (BATCH, BLOCK), generator=gen), torch.randint(0, 65, (BATCH, BLOCK), generator=gen))
    best = dict.fromkeys(built, math.inf)
    for _ in range(8):
        for name, (model, opt, loss) in built.items():
            for _ in range(3):
                train_step(model, opt, batch, 1.0, loss)
            start = time.perf_counter()
            for _ in range(15):
                train_step(model, opt, batch, 1.0, loss)
            best[name] = min(best[name], (time.perf_counter() - start) / 15)
    first = next(iter(best.values()))
    for name, seconds in best.items():
        print(f"[steps] {name:<36} {seconds * 1e3:6.1f} ms/step  {first / seconds:5.2f}x the first row")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", nargs="+", default=["train"], choices=["train", "steps", "attention"])
    parser.add_argument("--data", default=os.environ.get("TINY_SHAKESPEARE"), help="tiny Shakespeare file")
    parser.add_argument("--variants", nargs="+", default=["nanogpt-1t", "ours-1t"], choices=[*NANOGPT, *OURS])
    parser.add_argument("--nanogpt", help="a checkout of karpathy/nanoGPT (for nanogpt-* variants)")
    parser.add_argument("--parallel", type=int, default=1, choices=[1, 2], help="variants run at once, one core each")
    parser.add_argument("--seeds", nargs="+", type=int, help="run each of our variants once per seed")
    parser.add_argument("--max-steps", type=int, default=STEPS)
    parser.add_argument("--out", default="runs/bench_month1")
    args = parser.parse_args()
    if "attention" in args.sections:
        attention_section()
    if "steps" in args.sections:
        steps_section(args.nanogpt)
    if "train" not in args.sections:
        return
    if not args.data:
        parser.error("--data (or $TINY_SHAKESPEARE): the tiny Shakespeare text file")
    if any(v in NANOGPT for v in args.variants) and not args.nanogpt:
        parser.error("nanogpt-* variants need --nanogpt DIR (a checkout of karpathy/nanoGPT)")
    if args.parallel > 1 and any(threads_of(v) > 1 for v in args.variants):
        parser.error("--parallel 2 pins one core per variant: use only 1-thread variants")
    results = run_variants(args)
    print_table(results)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
