"""Per-domain loss, routing heatmap and I(domain; expert) of one or more checkpoints, side by side.

    python -m month4_moe eval --ckpt runs/month4_moe/ckpt.pt
    python -m month4_moe eval --ckpt runs/month4_moe/ckpt.pt,runs/month4_btx/mix/ckpt.pt --out-dir runs/month4_eval

Losses are nats per byte on the same evaluation windows for every model: the held-out split of the
training sources and the second evaluation set written differently (see month4_moe/domains.py).
I(domain; expert) is measured on each layer's first choices over the held-out windows: 0 bits when the
router ignores the domain, 2 bits when each of the 4 domains has an expert of its own.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from month4_moe.domains import DOMAINS, DomainConfig, DomainData
from month4_moe.lm import MoEGPT, describe, load_lm
from month4_moe.metrics import plot_routing
from month4_moe.train import evaluate_lm, print_eval
from shared.config import add_config_arguments, config_from_args
from shared.runtime import set_threads


@dataclass
class EvalConfig:
    ckpt: str = field(default="runs/month4_moe/ckpt.pt", metadata={"help": "checkpoint(s), comma-separated"})
    eval_tokens: int = field(default=8192, metadata={"help": "tokens per domain and evaluation set"})
    eval_chars: int = field(default=40_000, metadata={"help": "characters per domain read for each evaluation set"})
    out_dir: str = field(default="", metadata={"help": "write eval.json and a routing heatmap per MoE here"})
    threads: int = field(default=1, metadata={"help": "torch threads"})

    def __post_init__(self) -> None:
        if not self.paths():
            raise ValueError("--ckpt: give at least one checkpoint")
        if self.eval_tokens < 1 or self.threads < 1:
            raise ValueError("eval_tokens and threads must be at least 1")

    def paths(self) -> list[str]:
        return [p.strip() for p in self.ckpt.split(",") if p.strip()]


def evaluate_checkpoints(cfg: EvalConfig) -> dict[str, dict]:
    set_threads(cfg.threads)
    models = {path: load_lm(path) for path in cfg.paths()}  # every file checked before the slow part
    data = DomainData.build(DomainConfig(eval_chars=cfg.eval_chars), splits=("val", "other"))
    results = {}
    for path, (model, state) in models.items():
        result = evaluate_lm(model, data, model.cfg.block_size, cfg.eval_tokens)
        result["model"] = describe(state)
        results[path] = result
        print_eval(path, result)
        if cfg.out_dir and isinstance(model, MoEGPT):
            name = Path(path).parent.name or "model"
            plot_routing([torch.tensor(c) for c in result["routing_counts"]], DOMAINS,
                         Path(cfg.out_dir) / f"routing_{name}.png", title=f"{path}: first-choice expert per domain")
    if len(results) > 1:
        print_table(results)
    if cfg.out_dir:
        Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
        (Path(cfg.out_dir) / "eval.json").write_text(json.dumps(results, indent=2))
    return results


def print_table(results: dict[str, dict]) -> None:
    print("| model | " + " | ".join(f"{d} (held-out / second set)" for d in DOMAINS) + " | I(domain; expert), bits |")
    print("| --- " * (len(DOMAINS) + 2) + "|")
    for path, r in results.items():
        cells = " | ".join(f"{r['val'][d]:.3f} / {r['other'][d]:.3f}" for d in DOMAINS)
        bits = r.get("mutual_information_bits")
        mi = ", ".join(f"{b:.2f}" for b in bits) if bits else "-"
        print(f"| {path} | {cells} | {mi} |")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, EvalConfig)


def main(args: argparse.Namespace) -> None:
    evaluate_checkpoints(config_from_args(EvalConfig, args))
