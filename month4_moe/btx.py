"""Branch-Train-MiX (Sukhbaatar et al. 2024): experts that start out as domain specialists.

    python -m month4_moe btx --config btx                      # the README's run, runs/month4_btx/

1. seed: one dense model (month 1's GPT) trained on the whole mixture (--seed-steps);
2. branch: four copies of it, each trained further on one domain only (--branch-steps each);
3. mix: the four branches' MLPs become the 4 experts of each MoE layer; attention, norms and
   embeddings are the average of the branches'; the router starts from scratch and is trained alone
   on the mixture (--router-steps), then the whole model (--max-steps).

With the defaults the four stages take 500 + 4 x 100 + 100 + 200 = 1,200 steps of the same batch
size, the training tokens of `train --config moe_lm`, so the two MoEs compare at equal data:
    python -m month4_moe eval --ckpt runs/month4_moe/ckpt.pt,runs/month4_btx/mix/ckpt.pt
Every stage checkpoints under --out-dir (seed/, branch_code/, ..., mix_router/, mix/) and resumes.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from month1_transformer.model import GPT, GPTConfig
from month4_moe.domains import DOMAINS, DomainConfig, DomainData, tokenizer
from month4_moe.layer import ExpertBank, MoEConfig
from month4_moe.lm import MoEGPT, dense_gpt
from month4_moe.train import LM_MODEL, LMRunConfig, train_lm
from shared.config import add_config_arguments, config_from_args
from shared.errors import UserError
from shared.training import TrainConfig


@dataclass
class BTXConfig:
    seed_steps: int = field(default=500, metadata={"help": "steps of the dense seed model on the mixture"})
    branch_steps: int = field(default=100, metadata={"help": "steps of each domain branch on its domain"})
    router_steps: int = field(default=100, metadata={"help": "steps training only the routers of the merged MoE"})
    batch_size: int = field(default=16, metadata={"help": "sequences per step, every stage"})
    eval_tokens: int = field(default=8192, metadata={"help": "tokens per domain for each stage's metrics"})
    threads: int = field(default=1, metadata={"help": "torch threads"})

    def __post_init__(self) -> None:
        names = ("seed_steps", "branch_steps", "batch_size", "eval_tokens", "threads")
        low = [n for n in names if getattr(self, n) < 1]
        if low or self.router_steps < 0:
            raise ValueError(f"{', '.join(low) or 'router_steps'} must be at least {1 if low else 0}")


BTX_TRAINING = {"out_dir": "runs/month4_btx", "max_steps": 200, "lr": 2e-3, "min_lr": 2e-4, "warmup_steps": 50,
                "eval_interval": 100, "eval_batches": 8, "ckpt_interval": 100}


@torch.no_grad()
def copy_mlp_into_bank(mlp: nn.Module, bank: ExpertBank, e: int) -> None:
    """A dense block's MLP (fc -> gelu -> proj) becomes expert e."""
    bank.w1[e].copy_(mlp.fc.weight.t())
    bank.w2[e].copy_(mlp.proj.weight.t())
    if bank.b1 is not None:
        bank.b1[e].copy_(mlp.fc.bias)
        bank.b2[e].copy_(mlp.proj.bias)


def check_mergeable(gpt: GPTConfig, moe: MoEConfig, n_branches: int) -> None:
    if moe.n_experts != n_branches:
        raise UserError(f"BTX merges one branch per domain: --n-experts must be {n_branches}, got {moe.n_experts}")
    if moe.expert_act != "gelu" or moe.hidden(gpt.n_embd) != 4 * gpt.n_embd:
        raise UserError("BTX experts are the branches' MLPs: use --expert-act gelu and --expert-hidden 0")


@torch.no_grad()
def merge_branches(branches: list[GPT], moe: MoEConfig) -> MoEGPT:
    """One MoE from the dense branches: branch e's MLP in every layer is expert e; every other weight
    is the mean of the branches'; the routers are new."""
    check_mergeable(branches[0].cfg, moe, len(branches))
    mix = MoEGPT(branches[0].cfg, moe)
    states = [b.state_dict() for b in branches]
    shared = {k: torch.stack([s[k].float() for s in states]).mean(0) for k in states[0] if ".mlp." not in k}
    missing, unexpected = mix.load_state_dict(shared, strict=False)
    assert not unexpected and all(".mlp." in k for k in missing), (missing, unexpected)
    for layer, block in enumerate(mix.blocks):
        for e, branch in enumerate(branches):
            copy_mlp_into_bank(branch.blocks[layer].mlp, block.mlp.experts, e)
    return mix


def run_btx(gpt: GPTConfig, moe: MoEConfig, train_cfg: TrainConfig, btx: BTXConfig) -> dict:
    gpt.vocab_size = tokenizer().vocab_size
    check_mergeable(gpt, moe, len(DOMAINS))
    root = Path(train_cfg.out_dir or "runs/month4_btx")
    data = DomainData.build(DomainConfig())
    run = LMRunConfig(arch="dense", batch_size=btx.batch_size, eval_tokens=btx.eval_tokens, threads=btx.threads)
    everything = DomainConfig(domains=",".join(DOMAINS))
    stage = lambda name, steps: replace(train_cfg, out_dir=str(root / name), max_steps=steps)  # noqa: E731
    results = {}
    seed, _, results["seed"] = train_lm(gpt, moe, stage("seed", btx.seed_steps), run, everything, data=data,
                                        name="btx-seed")
    branches = []
    for domain in DOMAINS:
        branch = dense_gpt(gpt)
        branch.load_state_dict(seed.state_dict())
        branch, _, results[f"branch_{domain}"] = train_lm(
            gpt, moe, stage(f"branch_{domain}", btx.branch_steps), run, DomainConfig(domains=domain),
            model=branch, data=data, name=f"btx-branch-{domain}")
        branches.append(branch)
    mix = merge_branches(branches, moe)
    moe_run = replace(run, arch="moe")
    if btx.router_steps:
        for name, p in mix.named_parameters():
            p.requires_grad_(".router." in name)
        _, _, results["mix_router"] = train_lm(gpt, moe, stage("mix_router", btx.router_steps), moe_run, everything,
                                               model=mix, data=data, name="btx-mix-router")
        for p in mix.parameters():
            p.requires_grad_(True)
    _, _, results["mix"] = train_lm(gpt, moe, stage("mix", train_cfg.max_steps), moe_run, everything, model=mix,
                                    data=data, name="btx-mix")
    steps = btx.seed_steps + len(DOMAINS) * btx.branch_steps + btx.router_steps + train_cfg.max_steps
    summary = {"total_steps": steps, "train_tokens": steps * btx.batch_size * gpt.block_size,
               "stages": {name: {k: r.get(k) for k in ("val", "other", "mutual_information_bits", "train_seconds",
                                                       "step")} for name, r in results.items()}}
    (root / "btx.json").write_text(json.dumps(summary, indent=2))
    print(f"[btx] {steps} steps in all ({summary['train_tokens']:,} training tokens); {root / 'btx.json'}; "
          f"the merged model: {root / 'mix' / 'ckpt.pt'}", flush=True)
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser.add_argument_group("btx stages"), BTXConfig)
    add_config_arguments(parser.add_argument_group("model (month 1's GPTConfig)"), GPTConfig, defaults=LM_MODEL)
    add_config_arguments(parser.add_argument_group("moe (the merged model's MoE layers)"), MoEConfig)
    training = parser.add_argument_group(
        "training (every stage; --max-steps: the last stage, the whole merged model; --out-dir: the stages' root)")
    add_config_arguments(training, TrainConfig, defaults=BTX_TRAINING)


def main(args: argparse.Namespace) -> None:
    run_btx(config_from_args(GPTConfig, args), config_from_args(MoEConfig, args), config_from_args(TrainConfig, args),
            config_from_args(BTXConfig, args))
