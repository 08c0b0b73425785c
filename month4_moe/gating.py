"""The router: a linear gate that scores every expert for every token, and the losses that keep it balanced.

Schemes, each behind a field of `MoEConfig` (layer.py):
- top-k token choice (Switch: k = 1; GShard / Mixtral: k = 2): each token picks its k best experts;
- noisy top-k (Shazeer et al. 2017): in training, Gaussian noise scaled by a learned softplus is added to
  the logits before the choice, so that experts that are never picked still get tried;
- expert choice (Zhou et al. 2022): each expert picks its C best tokens (balanced by construction, but a
  token's route depends on the other tokens of the batch, so it is not causal: for teaching and encoders);
- auxiliary-loss-free balancing (DeepSeek-V3): a per-expert bias added to the scores used to *select*
  experts, never to the combine weights, nudged after every training step towards the mean load.

Losses: the Switch load-balancing loss `N * sum_i f_i P_i` and the ST-MoE router z-loss
`mean(logsumexp(logits)^2)`; both take a token mask, so padding never counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class Routes:
    """A routing decision as a list of routes (token -> expert with a weight), R of them.

    Top-k routing lists routes in priority order: every token's first choice (tokens in order), then
    every second choice, ...; `slot` is None until capacity assigns one. Expert choice fills `slot`
    itself (the rank of the token in its expert's pick)."""

    token: Tensor  # [R] long
    expert: Tensor  # [R] long
    weight: Tensor  # [R] float (fp32)
    slot: Tensor | None = None  # [R] long, position in the expert's buffer


def top_k_gating(logits: Tensor, k: int, renormalize: bool = True,
                 bias: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Softmax over the experts, then each token's k best: (probs [T, E], experts [T, k], weights [T, k]).

    The weights are the chosen probabilities; with k > 1 and `renormalize` they are rescaled to sum to 1
    (GShard, Mixtral). Top-1 keeps its probability p (Switch): renormalised it would be 1, and the router
    would get no gradient from the task loss. `bias` [E] (auxiliary-loss-free balancing) is added to the
    scores that *select* the experts only: the weights stay the unbiased probabilities."""
    probs = torch.softmax(logits.float(), dim=-1)
    scores = probs if bias is None else probs + bias
    experts = torch.topk(scores, k, dim=-1).indices
    weights = probs.gather(-1, experts)
    if k > 1 and renormalize:
        weights = weights / weights.sum(-1, keepdim=True).clamp_min(torch.finfo(weights.dtype).eps)
    return probs, experts, weights


def token_choice_routes(experts: Tensor, weights: Tensor, token_mask: Tensor | None = None) -> Routes:
    """[T, k] choices -> routes in priority order (all first choices, then all second choices, ...);
    masked tokens (padding) get no route."""
    t, k = experts.shape
    token = torch.arange(t, device=experts.device).repeat(k)
    expert, weight = experts.t().reshape(-1), weights.t().reshape(-1)
    if token_mask is not None:
        keep = token_mask.repeat(k)
        token, expert, weight = token[keep], expert[keep], weight[keep]
    return Routes(token, expert, weight)


def expert_choice_routes(probs: Tensor, capacity: int, token_mask: Tensor | None = None) -> Routes:
    """Each expert takes the `capacity` tokens that score it highest; weight = that probability."""
    scores = probs if token_mask is None else probs.masked_fill(~token_mask[:, None], -1.0)
    capacity = min(capacity, probs.size(0))
    weight, token = torch.topk(scores.t(), capacity, dim=1)  # [E, C]
    e = probs.size(1)
    expert = torch.arange(e, device=probs.device)[:, None].expand(e, capacity)
    slot = torch.arange(capacity, device=probs.device)[None, :].expand(e, capacity)
    keep = (weight >= 0).reshape(-1)  # fewer real tokens than capacity: the rest are padding
    return Routes(token.reshape(-1)[keep], expert.reshape(-1)[keep], weight.reshape(-1)[keep],
                  slot.reshape(-1)[keep])


def noisy_logits(logits: Tensor, noise_logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Shazeer et al.'s noisy gating: logits + N(0, 1) * softplus(x W_noise)."""
    noise = torch.randn(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
    return logits + noise * F.softplus(noise_logits)


def switch_load_balancing_loss(probs: Tensor, experts: Tensor, token_mask: Tensor | None = None) -> Tensor:
    """Switch Transformer's loss N * sum_i f_i * P_i (without its coefficient alpha).

    probs [T, E]: router probabilities; experts [T, k]: the chosen experts. f_i is the fraction of the
    routes (token, choice) sent to expert i, P_i the mean probability of expert i; both are taken over
    the unmasked tokens only. A uniform router gives exactly 1 whatever it chose (P_i = 1/N and
    sum f_i = 1), a router that sends everything to one expert with certainty gives N. (With k > 1
    this is transformers' `load_balancing_loss_func` divided by k, which counts each choice as a whole.)"""
    n = probs.size(-1)
    if token_mask is not None:
        probs, experts = probs[token_mask], experts[token_mask]
    if probs.size(0) == 0:
        return probs.new_zeros(())
    f = F.one_hot(experts, n).float().mean(dim=(0, 1))  # [E], sums to 1
    p = probs.float().mean(dim=0)
    return n * (f * p).sum()


def router_z_loss(logits: Tensor, token_mask: Tensor | None = None) -> Tensor:
    """ST-MoE's router z-loss: mean over tokens of logsumexp(logits)^2 (keeps the logits small, so the
    softmax stays out of the range where bf16 rounding flips the routing)."""
    if token_mask is not None:
        logits = logits[token_mask]
    if logits.size(0) == 0:
        return logits.new_zeros(())
    return torch.logsumexp(logits.float(), dim=-1).square().mean()


def aux_free_bias_update(bias: Tensor, load: Tensor, rate: float) -> Tensor:
    """DeepSeek-V3's update: b_i <- b_i + rate * sign(mean load - load_i). An overloaded expert's bias
    falls (it gets selected less), an underloaded one's rises. Returns the new bias."""
    load = load.float()
    return bias + rate * torch.sign(load.mean() - load)
