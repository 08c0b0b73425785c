"""The MoE layer: a router, E expert MLPs, capacity, dispatch and combine, load metrics.

    layer = MoELayer(d_model=128, cfg=MoEConfig(n_experts=4, top_k=2))
    y = layer(x)                 # x [..., d] -> y [..., d]; a dropped token gets 0 (+ the shared expert)
    layer.aux_loss               # alpha * Switch loss + beta * z-loss of this forward (add it to the task loss)
    layer.stats                  # tokens per expert, dropped share, load CV, max/mean, collapse flag

It replaces a Transformer block's MLP: the block computes x + moe(norm(x)), so a token whose routes
were all dropped passes through unchanged on the residual path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from month4_moe.dispatch import assign_slots, combine_einsum, combine_sorted, expert_capacity, renormalize_kept
from month4_moe.gating import (
    Routes,
    aux_free_bias_update,
    expert_choice_routes,
    noisy_logits,
    router_z_loss,
    switch_load_balancing_loss,
    token_choice_routes,
    top_k_gating,
)
from month4_moe.metrics import LoadStats, load_stats

ROUTINGS = ("topk", "expert_choice")
DISPATCHES = ("sort", "einsum")
ACTIVATIONS = ("gelu", "swiglu")
RENORMALIZE = ("after_drop", "before_drop", "none")


@dataclass
class MoEConfig:
    n_experts: int = field(default=4, metadata={"help": "experts per MoE layer"})
    top_k: int = field(default=1, metadata={"help": "experts per token (1: Switch, 2: GShard/Mixtral)"})
    routing: str = field(default="topk", metadata={
        "help": "topk: each token picks k experts; expert_choice: each expert picks its tokens (not causal)",
        "choices": ROUTINGS})
    noisy_gate: bool = field(default=False, metadata={"help": "noisy top-k gating in training (Shazeer 2017)"})
    renormalize: str = field(default="after_drop", metadata={
        "help": "with k > 1, rescale each token's gate weights to sum to 1: over the routes kept after capacity "
                "(DeepSpeed, fairseq), over the k chosen ones (GShard's paper, Mixtral; the same when nothing is "
                "dropped), or not at all", "choices": RENORMALIZE})
    capacity_factor: float = field(default=1.25, metadata={"help": "expert capacity factor in training"})
    eval_capacity_factor: float = field(default=2.0, metadata={"help": "expert capacity factor in evaluation"})
    min_capacity: int = field(default=4, metadata={"help": "smallest expert capacity"})
    dropless: bool = field(default=False, metadata={"help": "no capacity limit: never drop a token"})
    dispatch: str = field(default="sort", metadata={
        "help": "sort: gather/sort by expert (fast); einsum: the one-hot [tokens, experts, capacity] form",
        "choices": DISPATCHES})
    aux_loss_coef: float = field(default=1e-2, metadata={"help": "alpha of the Switch load-balancing loss"})
    z_loss_coef: float = field(default=1e-3, metadata={"help": "coefficient of the router z-loss"})
    aux_free: bool = field(default=False, metadata={
        "help": "DeepSeek-V3 auxiliary-loss-free balancing: a selection-only bias per expert"})
    bias_update_rate: float = field(default=1e-3, metadata={"help": "step of the aux-free bias update"})
    shared_expert: bool = field(default=False, metadata={"help": "add an always-on shared expert (DeepSeekMoE)"})
    expert_act: str = field(default="gelu", metadata={
        "help": "expert MLP: gelu (month 1's MLP) or swiglu (Mixtral)", "choices": ACTIVATIONS})
    expert_hidden: int = field(default=0, metadata={"help": "hidden width of an expert (0: 4 x the model width)"})
    collapse_share: float = field(default=0.9, metadata={
        "help": "warn of collapse when one expert is chosen by this share of the tokens"})

    def __post_init__(self) -> None:
        if self.n_experts < 1:
            raise ValueError(f"n_experts must be at least 1, got {self.n_experts}")
        if not 1 <= self.top_k <= self.n_experts:
            raise ValueError(f"top_k must be between 1 and n_experts={self.n_experts}, got {self.top_k}")
        for name, choices in (("routing", ROUTINGS), ("dispatch", DISPATCHES), ("expert_act", ACTIVATIONS),
                              ("renormalize", RENORMALIZE)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")
        if self.capacity_factor <= 0 or self.eval_capacity_factor <= 0:
            raise ValueError("capacity_factor and eval_capacity_factor must be > 0")
        if self.min_capacity < 0 or self.expert_hidden < 0:
            raise ValueError("min_capacity and expert_hidden must be >= 0")
        if self.aux_loss_coef < 0 or self.z_loss_coef < 0 or self.bias_update_rate < 0:
            raise ValueError("aux_loss_coef, z_loss_coef and bias_update_rate must be >= 0")
        if self.aux_free and self.routing == "expert_choice":
            raise ValueError("aux_free balancing is for topk routing (expert choice is balanced by construction)")
        if not 0 < self.collapse_share <= 1:
            raise ValueError(f"collapse_share must be in (0, 1], got {self.collapse_share}")

    def hidden(self, d_model: int) -> int:
        return self.expert_hidden or 4 * d_model


class ExpertBank(nn.Module):
    """E expert MLPs stored as stacked weights (one tensor per weight kind, experts first), so the
    experts run as one batched matmul on a padded [E, C, d] buffer, or one matmul per expert on
    contiguous blocks of tokens sorted by expert.
    gelu: y = gelu(x W1 + b1) W2 + b2 (month 1's MLP); swiglu: y = (silu(x W1) * x W3) W2 (Mixtral)."""

    def __init__(self, n_experts: int, d_model: int, d_hidden: int, act: str = "gelu", bias: bool = True) -> None:
        super().__init__()
        self.act = act
        self.w1 = nn.Parameter(torch.empty(n_experts, d_model, d_hidden))
        self.w2 = nn.Parameter(torch.empty(n_experts, d_hidden, d_model))
        self.w3 = nn.Parameter(torch.empty(n_experts, d_model, d_hidden)) if act == "swiglu" else None
        use_bias = bias and act == "gelu"
        self.b1 = nn.Parameter(torch.zeros(n_experts, d_hidden)) if use_bias else None
        self.b2 = nn.Parameter(torch.zeros(n_experts, d_model)) if use_bias else None
        for w in (self.w1, self.w2, self.w3):
            if w is not None:
                nn.init.normal_(w, std=0.02)

    @property
    def n_experts(self) -> int:
        return self.w1.size(0)

    def _hidden(self, h1: Tensor, x: Tensor, w3: Tensor | None) -> Tensor:
        return F.silu(h1) * (x @ w3) if self.act == "swiglu" else F.gelu(h1)

    def forward_expert(self, e: int, x: Tensor) -> Tensor:
        """Expert e on tokens x [n, d]."""
        h = x @ self.w1[e]
        if self.b1 is not None:
            h = h + self.b1[e]
        y = self._hidden(h, x, None if self.w3 is None else self.w3[e]) @ self.w2[e]
        return y + self.b2[e] if self.b2 is not None else y

    def forward_sorted(self, x: Tensor, counts: list[int]) -> Tensor:
        """x [R, d] sorted by expert, counts[e] rows for expert e: each expert on its own block."""
        blocks = [self.forward_expert(e, part) for e, part in enumerate(x.split(counts)) if part.numel()]
        return torch.cat(blocks) if blocks else x.new_zeros(0, self.w2.size(-1))

    def forward_padded(self, x: Tensor) -> Tensor:
        """x [E, C, d] -> [E, C, d]: all experts as one batched matmul (empty slots compute too)."""
        h = torch.bmm(x, self.w1)
        if self.b1 is not None:
            h = h + self.b1[:, None]
        y = torch.bmm(self._hidden(h, x, self.w3), self.w2)
        return y + self.b2[:, None] if self.b2 is not None else y


class ExpertMLP(nn.Module):
    """One expert as an ordinary module (the form DeepSpeed's MoE copies per expert, and the shared
    expert): fc -> gelu -> proj, or Mixtral's w2(silu(w1 x) * w3 x)."""

    def __init__(self, d_model: int, d_hidden: int, act: str = "gelu", bias: bool = True) -> None:
        super().__init__()
        self.act = act
        use_bias = bias and act == "gelu"
        self.fc = nn.Linear(d_model, d_hidden, bias=use_bias)
        self.up = nn.Linear(d_model, d_hidden, bias=False) if act == "swiglu" else None
        self.proj = nn.Linear(d_hidden, d_model, bias=use_bias)

    def forward(self, x: Tensor) -> Tensor:
        h = self.fc(x)
        h = F.silu(h) * self.up(x) if self.up is not None else F.gelu(h)
        return self.proj(h)

    @torch.no_grad()
    def load_from_bank(self, bank: ExpertBank, e: int) -> ExpertMLP:
        self.fc.weight.copy_(bank.w1[e].t())
        self.proj.weight.copy_(bank.w2[e].t())
        if self.up is not None:
            self.up.weight.copy_(bank.w3[e].t())
        if bank.b1 is not None:
            self.fc.bias.copy_(bank.b1[e])
            self.proj.bias.copy_(bank.b2[e])
        return self

    @torch.no_grad()
    def store_in_bank(self, bank: ExpertBank, e: int) -> None:
        bank.w1[e].copy_(self.fc.weight.t())
        bank.w2[e].copy_(self.proj.weight.t())
        if self.up is not None:
            bank.w3[e].copy_(self.up.weight.t())
        if bank.b1 is not None:
            bank.b1[e].copy_(self.fc.bias)
            bank.b2[e].copy_(self.proj.bias)


class TokenRouter(nn.Module):
    """Which experts each token goes to (month4_moe.router, another thing, sends whole requests to
    fine-tuned models): the linear gate (no bias, fp32 like DeepSpeed's and Switch's), the optional
    noise gate, and the aux-free selection bias (a buffer: it is never trained by gradient)."""

    def __init__(self, d_model: int, cfg: MoEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.weight = nn.Linear(d_model, cfg.n_experts, bias=False)
        self.noise = nn.Linear(d_model, cfg.n_experts, bias=False) if cfg.noisy_gate else None
        if self.noise is not None:
            nn.init.zeros_(self.noise.weight)  # starts as softplus(0) = 0.69 noise everywhere
        self.register_buffer("selection_bias", torch.zeros(cfg.n_experts), persistent=cfg.aux_free)

    def logits(self, x: Tensor) -> Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return F.linear(x.float(), self.weight.weight.float())

    def route(self, x: Tensor, token_mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor, Routes]:
        """x [T, d] -> (clean logits, probs, the experts each token chose [T, k] (expert choice: its
        highest-probability expert), routes without slots (expert choice: with slots))."""
        cfg = self.cfg
        clean = self.logits(x)
        logits = clean
        if self.noise is not None and self.training:
            with torch.autocast(x.device.type, enabled=False):
                logits = noisy_logits(clean, self.noise(x.float()))
        if cfg.routing == "expert_choice":
            probs = torch.softmax(logits, dim=-1)
            capacity = expert_capacity(x.size(0), cfg.n_experts, cfg.top_k, self.capacity_factor(), cfg.min_capacity)
            return clean, probs, probs.argmax(-1, keepdim=True), expert_choice_routes(probs, capacity, token_mask)
        bias = self.selection_bias if cfg.aux_free else None
        probs, experts, weights = top_k_gating(logits, cfg.top_k, cfg.renormalize == "before_drop", bias)
        return clean, probs, experts, token_choice_routes(experts, weights, token_mask)

    def capacity_factor(self) -> float:
        return self.cfg.capacity_factor if self.training else self.cfg.eval_capacity_factor


class MoELayer(nn.Module):
    def __init__(self, d_model: int, cfg: MoEConfig, bias: bool = True) -> None:
        super().__init__()
        self.cfg = cfg
        hidden = cfg.hidden(d_model)
        self.router = TokenRouter(d_model, cfg)
        self.experts = ExpertBank(cfg.n_experts, d_model, hidden, cfg.expert_act, bias)
        self.shared = ExpertMLP(d_model, hidden, cfg.expert_act, bias) if cfg.shared_expert else None
        self.aux_loss: Tensor = torch.zeros(())
        self.stats: LoadStats | None = None
        self.last_choice: Tensor | None = None  # [T] each token's first-choice expert, for routing analysis
        # Compute the aux loss and the load metrics (off for pure inference, e.g. token-by-token decoding,
        # where this bookkeeping costs more than the expert itself).
        self.track = True

    def capacity(self, n_tokens: int) -> int | None:
        cfg = self.cfg
        if cfg.dropless:
            return None
        return expert_capacity(n_tokens, cfg.n_experts, cfg.top_k, self.router.capacity_factor(), cfg.min_capacity)

    def forward(self, x: Tensor, token_mask: Tensor | None = None) -> Tensor:
        """x [..., d]; token_mask [...] bool, False for padding (no route, no loss, output 0)."""
        cfg = self.cfg
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        mask = None if token_mask is None else token_mask.reshape(-1).to(torch.bool)
        logits, probs, chosen, routes = self.router.route(flat, mask)
        n_tokens = flat.size(0)
        capacity = self.capacity(n_tokens)
        load = None
        if routes.slot is not None:  # expert choice: the experts chose exactly their capacity
            kept, capacity = routes, capacity or n_tokens
        elif capacity is not None and len(routes.token) <= capacity and cfg.dispatch == "sort":
            kept = routes  # no expert can overflow (decoding a few tokens): no slots to assign
        else:
            kept, capacity, load = assign_slots(routes, cfg.n_experts, capacity)
        if cfg.top_k > 1 and cfg.renormalize == "after_drop" and routes.slot is None:
            kept = renormalize_kept(kept, n_tokens)
        if cfg.dispatch == "sort":
            out = combine_sorted(flat, kept, self.experts.forward_sorted, cfg.n_experts)
        else:
            out = combine_einsum(flat, kept, self.experts.forward_padded, cfg.n_experts, capacity)
        if self.shared is not None:
            shared = self.shared(flat)
            out = out + (shared if mask is None else shared * mask[:, None])
        with torch.no_grad():
            self.last_choice = chosen[:, 0]
            if (self.track or cfg.aux_free) and load is None:
                load = torch.bincount(routes.expert, minlength=cfg.n_experts)
            if self.track:
                kept_load = torch.bincount(kept.expert, minlength=cfg.n_experts)
                n_real = n_tokens if mask is None else int(mask.sum())
                self.stats = load_stats(load, kept_load, n_real, cfg.top_k, cfg.collapse_share)
            if cfg.aux_free and self.training:
                self.router.selection_bias.copy_(
                    aux_free_bias_update(self.router.selection_bias, load, cfg.bias_update_rate))
        if self.track:
            # Expert choice is balanced by construction: only the z-loss applies to it.
            balance = switch_load_balancing_loss(probs, chosen, mask) if cfg.routing == "topk" else 0.0
            self.aux_loss = cfg.aux_loss_coef * balance + cfg.z_loss_coef * router_z_loss(logits, mask)
        return out.reshape(shape)


def moe_forward(x: Tensor, router_weight: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, k: int) -> Tensor:
    """A dropless top-k MoE with GELU experts as one function (what MoELayer computes with
    dropless=True, expert_act="gelu" and renormalize="before_drop").
    x [T, d]; router_weight [E, d]; w1 [E, d, h]; b1 [E, h]; w2 [E, h, d]; b2 [E, d]."""
    _, experts, weights = top_k_gating(x @ router_weight.t(), k, renormalize=True)
    routes = token_choice_routes(experts, weights)

    def run(x_sorted: Tensor, counts: list[int]) -> Tensor:
        parts = [F.gelu(part @ w1[e] + b1[e]) @ w2[e] + b2[e] for e, part in enumerate(x_sorted.split(counts))]
        return torch.cat(parts)

    return combine_sorted(x, routes, run, router_weight.size(0))
