"""DeepSpeed's MoE layer (`deepspeed.moe.layer.MoE`) in the place of ours, on the same weights.

DeepSpeed on a CPU machine: `DS_ACCELERATOR=cpu` and the gloo backend. Two of its defaults compile
C++ ops on first use (minutes, once per machine): the shared-memory all-reduce (`shm_comm`, built by
`init_distributed` when the accelerator is cpu and the backend is ccl) and its fused / CPU Adam. We use
torch's own optimizer (a client AdamW given to `deepspeed.initialize`, no "optimizer" section in the
config) and initialise torch.distributed ourselves with gloo, so nothing is compiled.

What DeepSpeed's gate offers, and the fields of MoEConfig it maps to: top-1 / top-2 (top_k),
capacity_factor, eval_capacity_factor, min_capacity, drop_tokens = not dropless. We always pass
use_rts=False and top2_2nd_expert_sampling=False (both draw random numbers inside the gate; off, the
forward is a pure function of the weights, comparable with ours). DeepSpeed has no z-loss, no aux-free
bias, no expert choice and no DeepSeek-style shared expert: asking for one is an error here.
"""

from __future__ import annotations

import os
from types import ModuleType

import torch
from torch import Tensor, nn

from month4_moe.dispatch import expert_capacity
from month4_moe.layer import ExpertMLP, MoEConfig, MoELayer
from month4_moe.metrics import LoadStats, load_stats


def import_deepspeed() -> ModuleType:
    """deepspeed, with the CPU accelerator unless a GPU is there (set before the first import)."""
    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    import deepspeed

    return deepspeed


def check_supported(cfg: MoEConfig) -> None:
    unsupported = [name for name, on in (
        ("routing=expert_choice", cfg.routing != "topk"), ("aux_free", cfg.aux_free),
        ("shared_expert", cfg.shared_expert), ("noisy_gate", cfg.noisy_gate),
        ("z_loss_coef > 0", cfg.z_loss_coef > 0), ("top_k > 2", cfg.top_k > 2),
        ("renormalize other than after_drop", cfg.top_k == 2 and cfg.renormalize != "after_drop"),
    ) if on]
    if unsupported:
        raise ValueError(f"DeepSpeed's MoE has no {', '.join(unsupported)}; set them off for --layer deepspeed")


class DeepSpeedMoEMLP(nn.Module):
    """A block's feed-forward as `deepspeed.moe.layer.MoE`: forward(x) -> y, with `aux_loss`
    (aux_loss_coef x DeepSpeed's l_aux) and `stats` like MoELayer's."""

    def __init__(self, d_model: int, cfg: MoEConfig, bias: bool = True, ep_size: int = 1) -> None:
        super().__init__()
        check_supported(cfg)
        import_deepspeed()
        from deepspeed.moe.layer import MoE

        self.cfg = cfg
        expert = ExpertMLP(d_model, cfg.hidden(d_model), cfg.expert_act, bias)
        for p in expert.parameters():
            nn.init.normal_(p, std=0.02) if p.dim() > 1 else nn.init.zeros_(p)
        self.moe = MoE(d_model, expert, num_experts=cfg.n_experts, ep_size=ep_size, k=cfg.top_k,
                       capacity_factor=cfg.capacity_factor, eval_capacity_factor=cfg.eval_capacity_factor,
                       min_capacity=cfg.min_capacity, drop_tokens=not cfg.dropless, use_rts=False,
                       top2_2nd_expert_sampling=False)
        self.aux_loss: Tensor = torch.zeros(())
        self.stats: LoadStats | None = None
        self.track = True  # DeepSpeed computes its l_aux and counts anyway; kept for MoEGPT.set_tracking

    @property
    def local_experts(self) -> nn.ModuleList:
        return self.moe.deepspeed_moe.experts.deepspeed_experts

    def forward(self, x: Tensor) -> Tensor:
        y, l_aux, counts = self.moe(x)
        self.aux_loss = self.cfg.aux_loss_coef * l_aux
        cfg, n_tokens = self.cfg, x.numel() // x.size(-1)
        kept = counts  # each expert keeps min(its load, the capacity DeepSpeed computes as we do)
        if not cfg.dropless:
            factor = cfg.capacity_factor if self.training else cfg.eval_capacity_factor
            kept = counts.clamp_max(expert_capacity(n_tokens, cfg.n_experts, cfg.top_k, factor, cfg.min_capacity))
        self.stats = load_stats(counts, kept, n_tokens, cfg.top_k, cfg.collapse_share)
        return y


@torch.no_grad()
def copy_into_deepspeed(ours: MoELayer, theirs: nn.Module, first_expert: int = 0) -> None:
    """Our layer's router and experts into a DeepSpeed MoE (or DeepSpeedMoEMLP); with expert
    parallelism a rank holds the experts first_expert, first_expert + 1, ..."""
    moe = theirs.moe if isinstance(theirs, DeepSpeedMoEMLP) else theirs
    moe.deepspeed_moe.gate.wg.weight.copy_(ours.router.weight.weight)
    for i, expert in enumerate(moe.deepspeed_moe.experts.deepspeed_experts):
        expert.load_from_bank(ours.experts, first_expert + i)
