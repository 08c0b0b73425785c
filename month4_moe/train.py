"""Train the MoE language model (or a dense baseline) on the four-domain mixture, byte level.

    python -m month4_moe train                                   # 4 experts, top-1, runs/month4_moe
    python -m month4_moe train --config moe_lm                   # the README's run
    python -m month4_moe train --arch dense --out-dir runs/month4_dense
    python -m month4_moe train --top-k 2 --aux-free true --aux-loss-coef 0 --out-dir runs/month4_auxfree

Every step the routers' load (tokens per expert, dropped share, load CV, max/mean) is appended to
OUT_DIR/load.jsonl, and a warning says when one expert takes over. At the end: OUT_DIR/loss.png,
OUT_DIR/routing.png (domain x expert share per layer), OUT_DIR/metrics.json (per-domain loss on the
held-out split and on the second evaluation set, I(domain; expert) per layer, parameters, FLOPs per
token, training tokens/s). The checkpoint resumes; `eval` reads it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from month1_transformer.model import GPTConfig
from month4_moe.domains import DOMAINS, DomainConfig, DomainData, make_domain_batches, tokenizer
from month4_moe.layer import MoEConfig
from month4_moe.lm import (
    MoEGPT,
    check_same_model,
    checkpoint_extra,
    dense_gpt,
    domain_losses,
    flops_batch,
    flops_per_token,
    lm_loss,
    param_counts,
    routing_counts,
)
from month4_moe.metrics import mutual_information, plot_routing, warn_if_collapsed
from shared.config import add_config_arguments, config_from_args
from shared.plotting import plot_history
from shared.runtime import seed_everything, set_threads
from shared.training import TrainConfig, Trainer

ARCHS = ("moe", "dense")


@dataclass
class LMRunConfig:
    arch: str = field(default="moe", metadata={"help": "moe, or dense (month 1's GPT)", "choices": ARCHS})
    dense_hidden: int = field(default=0, metadata={"help": "--arch dense: MLP width (0: 4 x n_embd)"})
    batch_size: int = field(default=16, metadata={"help": "sequences per step (a multiple of the domains)"})
    eval_tokens: int = field(default=8192, metadata={"help": "tokens per domain for the final per-domain metrics"})
    threads: int = field(default=1, metadata={"help": "torch threads"})

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        low = [n for n in ("batch_size", "eval_tokens", "threads") if getattr(self, n) < 1]
        if low or self.dense_hidden < 0:
            raise ValueError(f"{', '.join(low) or 'dense_hidden'} must be at least {1 if low else 0}")


# The month-4 model's settings where they differ from month 1's GPTConfig defaults.
LM_MODEL = {"block_size": 128, "n_embd": 96, "bias": False}
LM_TRAINING = {"out_dir": "runs/month4_moe", "max_steps": 1200, "lr": 2e-3, "min_lr": 2e-4, "warmup_steps": 50,
               "eval_interval": 200, "eval_batches": 8, "ckpt_interval": 200}


def build_model(gpt: GPTConfig, moe: MoEConfig, run: LMRunConfig) -> nn.Module:
    return MoEGPT(gpt, moe) if run.arch == "moe" else dense_gpt(gpt, run.dense_hidden)


class LoadLog:
    """Per-step router load of every MoE layer, appended to a JSON-lines file; warns on collapse
    (at most once per 100 steps)."""

    def __init__(self, path: Path | None) -> None:
        self.path, self.last_warning = path, -10**9
        self.rows: list[dict] = []
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_file():  # a resumed run: keep the earlier steps' rows
                self.rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def __call__(self, trainer: Trainer) -> None:
        stats = trainer.model.load_stats()
        if any(s.collapsed for s in stats) and trainer.step - self.last_warning >= 100:
            warn_if_collapsed(stats, trainer.step)
            self.last_warning = trainer.step
        row = {"step": trainer.step, "collapsed": any(s.collapsed for s in stats), "layers": [
            {k: v for k, v in s.as_dict().items() if k in ("routes_per_expert", "dropped_share", "load_cv",
                                                             "max_over_mean")} for s in stats]}
        self.rows = [r for r in self.rows if r["step"] < trainer.step] + [row]
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")

    def summary(self, last: int = 100) -> dict:
        """The load over the last `last` training steps: mean dropped share and CV, worst max/mean."""
        rows = self.rows[-last:]
        if not rows:
            return {}
        layers = [layer for r in rows for layer in r["layers"]]
        return {"steps": [rows[0]["step"], rows[-1]["step"]],
                "dropped_share": sum(x["dropped_share"] for x in layers) / len(layers),
                "load_cv": sum(x["load_cv"] for x in layers) / len(layers),
                "max_over_mean": max(x["max_over_mean"] for x in layers)}


def evaluate_lm(model: nn.Module, data: DomainData, block_size: int, eval_tokens: int) -> dict:
    """Per-domain losses on both evaluation sets; for an MoE the routing matrices and I(domain; expert)."""
    out = {split: domain_losses(model, data, split, block_size, eval_tokens) for split in ("val", "other")}
    if isinstance(model, MoEGPT):
        counts = routing_counts(model, data, "val", block_size, eval_tokens)
        out["routing_counts"] = [c.tolist() for c in counts]
        out["mutual_information_bits"] = [mutual_information(c) for c in counts]
        out["mutual_information_bits_other"] = [
            mutual_information(c) for c in routing_counts(model, data, "other", block_size, eval_tokens)]
    return out


def print_eval(name: str, result: dict) -> None:
    for split, label in (("val", "held-out"), ("other", "second set")):
        cells = "  ".join(f"{d} {result[split][d]:.3f}" for d in DOMAINS)
        print(f"[{name}] loss per domain ({label}, nats/byte): {cells}", flush=True)
    if "mutual_information_bits" in result:
        bits = ", ".join(f"{b:.2f}" for b in result["mutual_information_bits"])
        print(f"[{name}] I(domain; expert) per layer, bits (max 2): {bits}", flush=True)


def train_lm(gpt: GPTConfig, moe: MoEConfig, train_cfg: TrainConfig, run: LMRunConfig, data_cfg: DomainConfig,
             model: nn.Module | None = None, data: DomainData | None = None, name: str = "train",
             callback: Callable[[Trainer], None] | None = None) -> tuple[nn.Module, Trainer, dict]:
    """Train (or resume) on data_cfg's domains; returns the model, its trainer and the metrics.
    `model`: start from these weights instead of a new model (BTX's stages)."""
    set_threads(run.threads)
    seed_everything(train_cfg.seed)
    data = data or DomainData.build(data_cfg)
    gpt.vocab_size = tokenizer().vocab_size
    model = model if model is not None else build_model(gpt, moe, run)
    out = Path(train_cfg.out_dir) if train_cfg.out_dir else None
    if out is not None and train_cfg.resume and (out / "ckpt.pt").is_file():
        check_same_model(out / "ckpt.pt", model)
    get_batch = make_domain_batches(data, data_cfg.domain_list(), gpt.block_size, run.batch_size)
    log = LoadLog(out / "load.jsonl" if out else None) if isinstance(model, MoEGPT) else None

    def step_callback(trainer: Trainer) -> None:
        if log is not None:
            log(trainer)
        if callback is not None:
            callback(trainer)

    trainer = Trainer(model, get_batch, train_cfg, loss_fn=lm_loss, callback=step_callback,
                      extra_state=checkpoint_extra(model, tokenizer().to_dict()))
    counts = param_counts(model)
    what = f"{moe.n_experts} experts, top-{moe.top_k}" if isinstance(model, MoEGPT) else "dense"
    print(f"[{name}] {what}: {counts['total'] / 1e6:.2f}M parameters ({counts['active'] / 1e6:.2f}M active per "
          f"token); domains {data_cfg.domains}; step {trainer.step}/{train_cfg.max_steps}", flush=True)
    history = trainer.fit()
    tokens_per_step = run.batch_size * gpt.block_size
    metrics = {"name": name, "arch": "moe" if isinstance(model, MoEGPT) else "dense", "step": trainer.step,
               "train_tokens": trainer.step * tokens_per_step, "train_seconds": history.seconds,
               "train_tokens_per_s": trainer.step * tokens_per_step / history.seconds if history.seconds else None,
               "val_loss": history.eval_val[-1] if history.eval_val else None,
               "params": counts, "flops_per_token": flops_per_token(model, flops_batch(data, gpt.block_size)),
               "model_config": asdict(gpt), "threads": run.threads}
    if isinstance(model, MoEGPT):
        metrics["moe_config"] = asdict(model.moe_cfg)
        metrics["load_last_100_steps"] = log.summary()
    metrics.update(evaluate_lm(model, data, gpt.block_size, run.eval_tokens))
    print_eval(name, metrics)
    if out is not None and history.step:
        plot_history(history, out / "loss.png", title=f"{name}: {what} on code/math/text/chat")
        if isinstance(model, MoEGPT):
            plot_routing([torch.tensor(c) for c in metrics["routing_counts"]], DOMAINS, out / "routing.png",
                         title=f"{name}: first-choice expert per domain (held-out text)")
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        print(f"[{name}] {out / 'metrics.json'}, {out / 'loss.png'}", flush=True)
    return model, trainer, metrics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser.add_argument_group("run"), LMRunConfig)
    add_config_arguments(parser.add_argument_group("data"), DomainConfig)
    add_config_arguments(parser.add_argument_group("model (month 1's GPTConfig)"), GPTConfig, defaults=LM_MODEL)
    add_config_arguments(parser.add_argument_group("moe (the MoE layer, MoEConfig)"), MoEConfig)
    add_config_arguments(parser.add_argument_group("training"), TrainConfig, defaults=LM_TRAINING)


def main(args: argparse.Namespace) -> None:
    train_lm(config_from_args(GPTConfig, args), config_from_args(MoEConfig, args), config_from_args(TrainConfig, args),
             config_from_args(LMRunConfig, args), config_from_args(DomainConfig, args))
