"""Month 2 benchmark: LoRA (fp32 base) vs QLoRA (4-bit NF4 base) on the tool-call task.

Each variant runs in its own process, one after another, so peak memory cannot mix:
load the base, add the same LoRA (r=8 on q/k/v/o), run `--steps` training steps of the
real run's settings (batch 4 of tool-call examples, shared Trainer), then score the
matching trained adapter on the held-out split with greedy decoding:

- lora*:  the committed adapter, month2_llm_core/adapters/toolcall-lora (fp32 base);
- qlora*: the adapter of a full QLoRA run (NF4 base), made by
      OMP_NUM_THREADS=1 HYBRID_AI_THREADS=1 python -m month2_llm_core finetune --config toolcall_qlora
  (skipped, with this hint, when it does not exist).

Variants with "+gc" add gradient checkpointing; it changes memory and time, not the
weights, so they are not scored again. Memory is resident set size (RSS): the process
peak (VmHWM, includes loading the model) and the peak sampled every 20 ms during
the training steps only (shared.memory).

    OMP_NUM_THREADS=1 HYBRID_AI_THREADS=1 python benchmarks/month2_lora_qlora.py
    python benchmarks/month2_lora_qlora.py --steps 4 --eval-n 0          # time and memory only

Prints a table with ratios against plain LoRA; writes runs/bench_month2_lora_qlora/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared.config import add_config_arguments, config_from_args
from shared.errors import UserError

VARIANTS = {
    "lora": {"qlora": False, "gradient_checkpointing": False},
    "qlora": {"qlora": True, "gradient_checkpointing": False},
    "lora+gc": {"qlora": False, "gradient_checkpointing": True},
    "qlora+gc": {"qlora": True, "gradient_checkpointing": True},
}
QLORA_ADAPTER = "runs/month2/toolcall-qlora/adapter"


def worker(variant: str, steps: int, eval_n: int, adapter: str, out: Path) -> None:
    """One variant, in this (fresh) process; writes its measurements to `out`."""
    from month2_llm_core import finetune as ft
    from month2_llm_core.toolcall_eval import evaluate
    from month2_llm_core.toolcall_model import load_base_model
    from month2_llm_core.toolcalls import make_examples
    from shared.memory import PeakRSS, peak_rss_bytes, rss_bytes
    from shared.runtime import seed_everything, set_threads

    threads = set_threads()
    cfg = ft.FinetuneConfig(**VARIANTS[variant])
    train_cfg = ft.train_config(max_steps=steps, out_dir="", eval_interval=0, progress=False)
    seed_everything(train_cfg.seed)
    model, tokenizer = load_base_model(cfg.model, cfg.qlora, cfg.gradient_checkpointing)
    rss_loaded = rss_bytes()
    model = ft.add_lora(model, cfg)
    train = make_examples("train", cfg.n_train, cfg.data_seed)
    encoded, _ = ft.encode_splits(tokenizer, {"train": train, "val": train[:8]}, cfg.max_length)
    get_batch = ft.make_get_batch(encoded, cfg.batch_size, tokenizer.pad_token_id)
    stamps = [time.perf_counter()]
    trainer = ft.AdapterTrainer(model, get_batch, train_cfg, loss_fn=ft.answer_loss,
                                callback=lambda _: stamps.append(time.perf_counter()))
    with PeakRSS() as sampler:
        trainer.fit()
    step_s = [b - a for a, b in zip(stamps, stamps[1:])]
    result = {
        "variant": variant,
        "threads": threads,
        "steps": steps,
        "seconds_per_step": statistics.median(step_s[1:] or step_s),  # the first step warms up
        "rss_after_load_gb": rss_loaded / 1e9,
        "peak_rss_training_gb": sampler.peak / 1e9,
        "peak_rss_process_gb": peak_rss_bytes() / 1e9,
        "losses": trainer.history.loss,
    }
    if eval_n and adapter and Path(adapter).is_dir():
        # The trained adapter goes onto this same base, next to the one we just trained.
        model.load_adapter(adapter, adapter_name="trained")
        model.set_adapter("trained")
        scores, _ = evaluate(model, tokenizer, make_examples("heldout", eval_n, cfg.data_seed))
        result["heldout"] = scores
        result["adapter"] = adapter
    out.write_text(json.dumps(result, indent=2))


@dataclass
class LoraQloraBenchConfig:
    variants: str = field(default=",".join(VARIANTS), metadata={"help": "comma-separated subset of: "
                                                                       + ", ".join(VARIANTS)})
    steps: int = field(default=8, metadata={"help": "training steps timed per variant"})
    eval_n: int = field(default=100, metadata={"help": "held-out examples scored (0: skip scoring)"})
    lora_adapter: str = field(default="month2_llm_core/adapters/toolcall-lora",
                              metadata={"help": "the LoRA adapter scored for lora"})
    qlora_adapter: str = field(default=QLORA_ADAPTER, metadata={"help": "the QLoRA adapter scored for qlora"})
    out: str = field(default="runs/bench_month2_lora_qlora", metadata={"help": "folder for the results"})

    def __post_init__(self) -> None:
        unknown = sorted(set(self.variant_list()) - set(VARIANTS))
        if unknown or self.steps < 1 or self.eval_n < 0:
            raise ValueError(f"--variants from {', '.join(VARIANTS)} (unknown: {unknown}); --steps >= 1, --eval-n >= 0")

    def variant_list(self) -> list[str]:
        return [v.strip() for v in self.variants.split(",") if v.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, LoraQloraBenchConfig)
    # How the parent starts each variant's process; not for users.
    parser.add_argument("--worker", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--adapter", default="", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    raw = parser.parse_args()
    try:
        args = config_from_args(LoraQloraBenchConfig, raw)
    except UserError as err:
        parser.error(str(err))
    if raw.worker:
        worker(raw.worker, args.steps, args.eval_n, raw.adapter, Path(raw.result))
        return

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           "HYBRID_AI_THREADS": os.environ.get("HYBRID_AI_THREADS", "1")}
    results = []
    for variant in args.variant_list():
        is_qlora = VARIANTS[variant]["qlora"]
        adapter = "" if "+gc" in variant or not args.eval_n else (args.qlora_adapter if is_qlora else args.lora_adapter)
        if adapter and not Path(adapter).is_dir():
            print(f"[bench] {variant}: no adapter at {adapter}; to score it, train it first (see --help)")
            adapter = ""
        result_path = out / f"{variant}.json"
        cmd = [sys.executable, __file__, "--worker", variant, "--steps", str(args.steps), "--eval-n",
               str(args.eval_n), "--adapter", adapter, "--result", str(result_path)]
        print(f"[bench] {variant}: {args.steps} steps{' + held-out scoring' if adapter else ''}", flush=True)
        subprocess.run(cmd, check=True, env=env)
        results.append(json.loads(result_path.read_text()))

    base = results[0]
    print(f"\n{'variant':<10} {'s/step':>7} {'x':>6} {'peak RSS train':>15} {'x':>6} {'peak RSS proc':>14} "
          f"{'x':>6} {'held-out EM':>12}   (ratios against {base['variant']}; "
          f"{base['threads']} thread(s), {base['steps']} steps)")
    for r in results:
        em = f"{r['heldout']['exact_match']:.0%} of {r['heldout']['n']}" if "heldout" in r else "-"
        ratio = {k: r[k] / base[k] for k in ("seconds_per_step", "peak_rss_training_gb", "peak_rss_process_gb")}
        print(f"{r['variant']:<10} {r['seconds_per_step']:>7.2f} {ratio['seconds_per_step']:>5.2f}x "
              f"{r['peak_rss_training_gb']:>12.2f} GB {ratio['peak_rss_training_gb']:>5.2f}x "
              f"{r['peak_rss_process_gb']:>11.2f} GB {ratio['peak_rss_process_gb']:>5.2f}x {em:>12}")
    (out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
