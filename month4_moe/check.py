"""Our MoE layer against three references on the same weights; prints the largest difference of each.

    python -m month4_moe check

- the per-token Python loop of month4_moe/reference.py (top-1 and top-2, tokens dropped at capacity
  factor 0.6, both dispatch forms);
- transformers' `MixtralSparseMoeBlock` (top-2, dropless, SwiGLU experts);
- DeepSpeed's `deepspeed.moe.layer.MoE` (top-1 with nothing dropped, top-2 with tokens dropped; random
  token selection and second-expert sampling off), output and l_aux.
The tests (month4_moe/tests/) assert the same comparisons with these tolerances.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import torch

from month4_moe.gating import switch_load_balancing_loss
from month4_moe.layer import ExpertMLP, MoEConfig, MoELayer
from month4_moe.reference import dense_loop
from shared.config import add_config_arguments, config_from_args
from shared.runtime import set_threads

TOLERANCE = 1e-5  # float32, other summation orders


@dataclass
class CheckConfig:
    tokens: int = field(default=256, metadata={"help": "tokens per comparison"})
    d_model: int = field(default=32, metadata={"help": "model width of the compared layers"})
    seed: int = 0

    def __post_init__(self) -> None:
        if self.tokens < 8 or self.d_model < 2:
            raise ValueError("tokens must be at least 8 and d_model at least 2")


def lively(layer: MoELayer) -> MoELayer:
    """A router sharper than the 0.02 init, and non-zero biases, so that routing and biases matter."""
    with torch.no_grad():
        layer.router.weight.weight.normal_(std=0.5)
        if layer.experts.b1 is not None:
            layer.experts.b1.normal_(std=0.1)
            layer.experts.b2.normal_(std=0.1)
    return layer


def against_loop(cfg: CheckConfig) -> list[tuple[str, float]]:
    rows = []
    x = torch.randn(cfg.tokens, cfg.d_model)
    for k in (1, 2):
        for dispatch in ("sort", "einsum"):
            layer = lively(MoELayer(cfg.d_model, MoEConfig(top_k=k, dispatch=dispatch, capacity_factor=0.6)))
            diff = (layer(x) - dense_loop(layer, x)).abs().max().item()
            rows.append((f"dense loop, top-{k}, {dispatch}, {layer.stats.dropped_share:.0%} of routes dropped", diff))
    return rows


def against_mixtral(cfg: CheckConfig) -> list[tuple[str, float]]:
    from transformers import MixtralConfig
    from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock

    d, h = cfg.d_model, 2 * cfg.d_model
    block = MixtralSparseMoeBlock(MixtralConfig(hidden_size=d, intermediate_size=h, num_local_experts=4,
                                                num_experts_per_tok=2)).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(std=0.3)
    ours = MoELayer(d, MoEConfig(top_k=2, dropless=True, expert_act="swiglu", expert_hidden=h)).eval()
    with torch.no_grad():
        ours.router.weight.weight.copy_(block.gate.weight)
        ours.experts.w1.copy_(block.experts.gate_up_proj[:, :h].transpose(1, 2))
        ours.experts.w3.copy_(block.experts.gate_up_proj[:, h:].transpose(1, 2))
        ours.experts.w2.copy_(block.experts.down_proj.transpose(1, 2))
    x = torch.randn(1, cfg.tokens, d)
    rows = []
    for dispatch in ("sort", "einsum"):
        ours.cfg.dispatch = dispatch
        diff = (ours(x) - block(x)).abs().max().item()
        rows.append((f"transformers Mixtral block, top-2 dropless, {dispatch}", diff))
    return rows


def against_deepspeed(cfg: CheckConfig) -> list[tuple[str, float]]:
    from month4_moe.ds_moe import copy_into_deepspeed, import_deepspeed

    import_deepspeed()
    from deepspeed.moe.layer import MoE

    rows = []
    d = cfg.d_model
    x = torch.randn(cfg.tokens, d)
    for k, factor in ((1, 4.0), (2, 0.5)):
        moe_cfg = MoEConfig(top_k=k, capacity_factor=factor, min_capacity=0)
        ours = lively(MoELayer(d, moe_cfg))
        theirs = MoE(d, ExpertMLP(d, 4 * d), num_experts=4, k=k, capacity_factor=factor, min_capacity=0,
                     use_rts=False, top2_2nd_expert_sampling=False)
        copy_into_deepspeed(ours, theirs)
        y_theirs, l_aux, _ = theirs(x)
        y_ours = ours(x)
        probs = torch.softmax(x @ ours.router.weight.weight.t(), -1)
        aux_diff = (switch_load_balancing_loss(probs, probs.argmax(-1, keepdim=True)) - l_aux).abs().item()
        dropped = f"{ours.stats.dropped_share:.0%} of routes dropped"
        diff = (y_ours - y_theirs).abs().max().item()
        rows.append((f"DeepSpeed MoE, top-{k}, capacity factor {factor}, {dropped}", diff))
        rows.append((f"DeepSpeed l_aux, top-{k} (Switch loss of the first choices)", aux_diff))
    return rows


def run_checks(cfg: CheckConfig) -> list[tuple[str, float]]:
    set_threads(1)
    torch.manual_seed(cfg.seed)
    rows = against_loop(cfg) + against_mixtral(cfg) + against_deepspeed(cfg)
    print(f"| comparison ({cfg.tokens} tokens, width {cfg.d_model}, float32) | max abs difference "
          f"| within {TOLERANCE:g} |")
    print("| --- | --- | --- |")
    for name, diff in rows:
        print(f"| {name} | {diff:.2e} | {'yes' if diff <= TOLERANCE else 'NO'} |")
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, CheckConfig)


def main(args: argparse.Namespace) -> None:
    rows = run_checks(config_from_args(CheckConfig, args))
    if any(diff > TOLERANCE for _, diff in rows):
        raise SystemExit(1)
