"""The slowest, most obviously correct MoE: one token at a time, in Python loops, from the equations.
The layer's tensor forms are tested against it on the same weights (tests/test_layer.py, `check`)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from month4_moe.layer import ExpertMLP, MoELayer


@torch.no_grad()
def dense_loop(layer: MoELayer, x: Tensor, token_mask: Tensor | None = None) -> Tensor:
    """x [T, d] -> [T, d]: routing, capacity (first choices first, tokens in order) and the weighted sum
    of expert outputs, token by token. Top-k routing only (expert choice has its own check)."""
    cfg = layer.cfg
    n_tokens, d = x.shape
    bias = layer.experts.b1 is not None
    experts = [ExpertMLP(d, cfg.hidden(d), cfg.expert_act, bias).load_from_bank(layer.experts, e)
               for e in range(cfg.n_experts)]
    real = [t for t in range(n_tokens) if token_mask is None or bool(token_mask[t])]
    choices = {}
    for t in real:
        probs = torch.softmax(x[t] @ layer.router.weight.weight.t(), dim=-1)
        scores = probs + layer.router.selection_bias if cfg.aux_free else probs
        ranked = sorted(range(cfg.n_experts), key=lambda e: -float(scores[e]))[:cfg.top_k]
        choices[t] = [(e, float(probs[e])) for e in ranked]
    capacity = math.inf if cfg.dropless else layer.capacity(n_tokens)
    used = [0] * cfg.n_experts
    kept = {t: [] for t in real}
    for c in range(cfg.top_k):  # priority: every first choice, then every second choice
        for t in real:
            e, p = choices[t][c]
            if used[e] < capacity:
                used[e] += 1
                kept[t].append((e, p))
    out = torch.zeros(n_tokens, d)
    for t in real:
        total_kept, total_chosen = sum(p for _, p in kept[t]), sum(p for _, p in choices[t])
        for e, p in kept[t]:
            if cfg.top_k > 1 and cfg.renormalize == "after_drop":
                p = p / total_kept
            elif cfg.top_k > 1 and cfg.renormalize == "before_drop":
                p = p / total_chosen
            out[t] += p * experts[e](x[t])
        if layer.shared is not None:
            out[t] += layer.shared(x[t])
    return out


def gelu_mlp(x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> Tensor:
    return F.gelu(x @ w1 + b1) @ w2 + b2
