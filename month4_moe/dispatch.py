"""Expert capacity, and moving tokens to their experts and back (dispatch and combine).

Capacity: an expert processes at most C = max(min_capacity, ceil(k * T * factor / E)) routes per
batch (GShard, Switch); routes beyond it are dropped and their token passes through the residual
connection only. Priority goes to first choices (all tokens' first choices are placed before any
second choice), tokens in order. Dropless mode sets C to the largest load, so nothing is dropped.

Two ways to move the tokens, equal to rounding:
- `einsum`: the one-hot form of the papers. dispatch[t, e, c] = 1 when token t sits in slot c of
  expert e; combine holds its gate weight there. expert_in = einsum("tec,td->ecd"), out =
  einsum("tec,ecd->td"). Clear, but the [T, E, C] tensors cost T * E * C * d multiply-adds, more
  than the experts themselves once T is large.
- `sort`: sort the routes by expert, gather the tokens into one contiguous block per expert, run each
  expert on its block, and add the weighted results back with index_add. No [T, E, C] tensor and no
  padding: the work is the routes actually kept.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from month4_moe.gating import Routes, token_choice_routes


def expert_capacity(n_tokens: int, n_experts: int, k: int, capacity_factor: float, min_capacity: int = 4) -> int:
    """Slots per expert: max(min_capacity, ceil(k * n_tokens * capacity_factor / n_experts))."""
    return max(min_capacity, math.ceil(k * n_tokens * capacity_factor / n_experts))


def assign_slots(routes: Routes, n_experts: int, capacity: int | None) -> tuple[Routes, int, Tensor]:
    """Give each route its position in its expert's buffer, in priority order, and drop the routes
    past `capacity` (None: dropless, capacity = the largest load).
    Returns (the kept routes with `slot`, the capacity used, the load per expert before dropping)."""
    onehot = F.one_hot(routes.expert, n_experts)  # [R, E]: O(R * E), never [T, E, C]
    load = onehot.sum(0)
    slot = (onehot.cumsum(0) - 1).gather(1, routes.expert[:, None]).squeeze(1)
    if capacity is None:
        capacity = max(1, int(load.max())) if len(routes.expert) else 1
    keep = slot < capacity
    return Routes(routes.token[keep], routes.expert[keep], routes.weight[keep], slot[keep]), capacity, load


def renormalize_kept(routes: Routes, n_tokens: int) -> Routes:
    """Rescale each token's kept weights to sum to 1 (a token that lost a route to capacity puts its
    whole weight on the experts that kept it: DeepSpeed's and fairseq's top-2)."""
    total = torch.zeros(n_tokens, dtype=routes.weight.dtype, device=routes.weight.device)
    total.index_add_(0, routes.token, routes.weight)
    weight = routes.weight / total[routes.token].clamp_min(torch.finfo(total.dtype).eps)
    return Routes(routes.token, routes.expert, weight, routes.slot)


def dispatch_combine_tensors(routes: Routes, n_tokens: int, n_experts: int, capacity: int) -> tuple[Tensor, Tensor]:
    """The one-hot form: dispatch [T, E, C] (bool) and combine [T, E, C] (the gate weights)."""
    index = (routes.token, routes.expert, routes.slot)
    dispatch = torch.zeros(n_tokens, n_experts, capacity, dtype=torch.bool, device=routes.token.device)
    dispatch[index] = True
    combine = torch.zeros(n_tokens, n_experts, capacity, dtype=routes.weight.dtype, device=routes.token.device)
    combine[index] = routes.weight
    return dispatch, combine


def dispatch_and_combine(experts: Tensor, weights: Tensor, n_experts: int, capacity: int) -> tuple[Tensor, Tensor]:
    """Top-k choices [T, k] and their weights -> (dispatch, combine) [T, E, capacity], first choices
    placed before second choices, tokens in order, routes past the capacity dropped."""
    routes, _, _ = assign_slots(token_choice_routes(experts, weights), n_experts, capacity)
    return dispatch_combine_tensors(routes, experts.size(0), n_experts, capacity)


def combine_sorted(x: Tensor, routes: Routes, run_experts, n_experts: int) -> Tensor:
    """The sort/gather form: out[t] = sum over t's kept routes of weight * expert(x[t]).
    `run_experts(x_sorted, counts)` runs expert e on the e-th contiguous block of x_sorted."""
    if len(routes.expert) <= n_experts:  # a handful of routes (decoding): no sort, no bincount
        return combine_few(x, routes, run_experts, n_experts)
    order = torch.argsort(routes.expert, stable=True)
    token, weight = routes.token[order], routes.weight[order]
    counts = torch.bincount(routes.expert, minlength=n_experts).tolist()
    y = run_experts(x[token], counts)
    out = torch.zeros(x.shape, dtype=torch.float32, device=x.device)
    out.index_add_(0, token, y.float() * weight[:, None])
    return out.to(x.dtype)


def combine_few(x: Tensor, routes: Routes, run_experts, n_experts: int) -> Tensor:
    """combine_sorted for a few routes: each one through its expert, one at a time."""
    out = torch.zeros(x.shape, dtype=torch.float32, device=x.device)
    for r, e in enumerate(routes.expert.tolist()):
        counts = [0] * n_experts
        counts[e] = 1
        t = routes.token[r:r + 1]
        out.index_add_(0, t, run_experts(x[t], counts).float() * routes.weight[r])
    return out.to(x.dtype)


def combine_einsum(x: Tensor, routes: Routes, run_padded, n_experts: int, capacity: int) -> Tensor:
    """The one-hot form: gather into [E, C, d] with the dispatch tensor, run the experts on the
    padded buffer (`run_padded`), scatter back with the combine tensor."""
    dispatch, combine = dispatch_combine_tensors(routes, x.size(0), n_experts, capacity)
    expert_in = torch.einsum("tec,td->ecd", dispatch.to(x.dtype), x)
    expert_out = run_padded(expert_in)
    return torch.einsum("tec,ecd->td", combine.to(expert_out.dtype), expert_out).to(x.dtype)
