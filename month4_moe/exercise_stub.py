"""Month 4 graded exercises: your implementation.

Fill in every `raise NotImplementedError(...)`, then grade your work:

    python -m shared.exercises start month4
    pytest month4_moe --impl my_work/month4_moe.py            # all tasks
    pytest month4_moe --impl my_work/month4_moe.py -m m4_t4   # one task

Tests compare your functions with the reference (month4_moe/), with per-token Python loops written
from the equations, and with transformers' Mixtral load-balancing loss, with explicit tolerances
(float32: rtol 1e-5, atol 1e-6). Shapes: T tokens (batch and sequence flattened), E experts,
k experts per token, d model width, h expert hidden width, C expert capacity.
Every task is a plain function on tensors; inside one you may call your other functions or the
reference ones (month4_moe.gating, month4_moe.dispatch), so that a bug elsewhere does not fail it.
"""

from __future__ import annotations

import torch  # noqa: F401  (you will want it)
import torch.nn.functional as F  # noqa: F401  (you will want it)
from torch import Tensor

MONTH = "month4_moe"


# Task 4.1 (10 points) -----------------------------------------------------------------------
def top_k_gating(logits: Tensor, k: int, renormalize: bool = True,
                 bias: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Router logits [T, E] -> (probs [T, E], experts [T, k], weights [T, k]).

    probs = softmax over the experts (in float32). Each token's k experts are the k largest of
    probs + bias (bias [E] or None: auxiliary-loss-free balancing uses it to *select* only), best
    first. weights = the chosen experts' probs (never the biased scores); when k > 1 and
    renormalize, divide them by their sum so that each token's weights sum to 1. Top-1 keeps its
    probability as it is (Switch), so that the router still gets a gradient.
    """
    raise NotImplementedError("Task 4.1: top_k_gating")


# Task 4.2 (10 points) -----------------------------------------------------------------------
def switch_load_balancing_loss(probs: Tensor, experts: Tensor, token_mask: Tensor | None = None) -> Tensor:
    """The Switch Transformer's load-balancing loss N * sum_i f_i * P_i (no alpha), a scalar.

    probs [T, E] router probabilities, experts [T, k] the chosen experts, token_mask [T] bool
    (False = padding) or None. Over the unmasked tokens only: f_i = the share of the T * k
    (token, choice) routes that go to expert i (so sum_i f_i = 1), P_i = the mean of probs[:, i].
    A uniform router gives exactly 1.0; one that sends every token to one expert with
    probability 1 gives N. No unmasked token at all: return 0.
    """
    raise NotImplementedError("Task 4.2: switch_load_balancing_loss")


# Task 4.3 (5 points) ------------------------------------------------------------------------
def router_z_loss(logits: Tensor, token_mask: Tensor | None = None) -> Tensor:
    """ST-MoE's router z-loss: the mean over the unmasked tokens of logsumexp(logits[t])^2.

    logits [T, E]; token_mask [T] bool or None. No unmasked token: return 0.
    Hint: torch.logsumexp is stable for large logits; compute in float32.
    """
    raise NotImplementedError("Task 4.3: router_z_loss")


# Task 4.4 (15 points) -----------------------------------------------------------------------
def expert_capacity(n_tokens: int, n_experts: int, k: int, capacity_factor: float, min_capacity: int = 4) -> int:
    """Slots per expert: max(min_capacity, ceil(k * n_tokens * capacity_factor / n_experts))."""
    raise NotImplementedError("Task 4.4: expert_capacity")


def dispatch_and_combine(experts: Tensor, weights: Tensor, n_experts: int, capacity: int) -> tuple[Tensor, Tensor]:
    """Top-k choices -> the one-hot dispatch and combine tensors, both [T, E, capacity].

    experts, weights [T, k]. Walk the routes in priority order: every token's first choice (tokens
    in order), then every second choice, and so on. A route to expert e takes e's next free slot c
    (0, 1, 2, ...): dispatch[t, e, c] = True and combine[t, e, c] = its weight. Once an expert holds
    `capacity` routes, later routes to it are dropped (all zeros for them).
    dispatch is bool, combine has the weights' dtype.
    """
    raise NotImplementedError("Task 4.4: dispatch_and_combine")


# Task 4.5 (15 points) -----------------------------------------------------------------------
def moe_forward(x: Tensor, router_weight: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, k: int) -> Tensor:
    """A dropless top-k MoE layer with GELU experts: x [T, d] -> [T, d].

    router_weight [E, d] (logits = x @ router_weight^T); expert e is
    gelu(x @ w1[e] + b1[e]) @ w2[e] + b2[e] with w1 [E, d, h], b1 [E, h], w2 [E, h, d], b2 [E, d].
    out[t] = sum over t's k experts of weight * expert(x[t]), the weights from top_k_gating with
    renormalize=True. Run each expert once, on all of its tokens together (not token by token):
    gather them, compute, scale by the weights, index_add_ into the output.
    """
    raise NotImplementedError("Task 4.5: moe_forward")


# Task 4.6 (5 points) ------------------------------------------------------------------------
def aux_free_bias_update(bias: Tensor, load: Tensor, rate: float) -> Tensor:
    """DeepSeek-V3's auxiliary-loss-free balancing: return bias + rate * sign(mean(load) - load).

    bias [E] float; load [E] the routes each expert received this step (integers). An expert with
    more than the mean load gets a lower bias (selected less), one with less gets a higher one; an
    expert exactly at the mean keeps its bias.
    """
    raise NotImplementedError("Task 4.6: aux_free_bias_update")
