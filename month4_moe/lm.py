"""An MoE language model: month 1's GPT with every block's MLP replaced by an MoE layer.

The config is month 1's `GPTConfig` plus one group, `MoEConfig`; the model is month 1's `GPT` built
with `mlp_factory` (month1_transformer/model.py), so attention, norms, the KV cache and sampling are
month 1's code. The dense baselines are the same GPT with an MLP of another width.

    model = MoEGPT(GPTConfig(vocab_size=256, n_layer=4, n_embd=128), MoEConfig(n_experts=4, top_k=1))
    logits, ce = model(x, y)            # ce: the language-model loss only
    loss = ce + model.aux_loss()        # what training minimises (lm_loss does this in train mode)
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from month1_transformer.model import GPT, GPTConfig
from month4_moe.domains import DOMAINS, DomainData, eval_windows
from month4_moe.layer import ExpertMLP, MoEConfig, MoELayer
from month4_moe.metrics import LoadStats
from shared import checkpoint
from shared.errors import UserError

LAYERS = ("ours", "deepspeed")


class MoEGPT(GPT):
    def __init__(self, cfg: GPTConfig, moe: MoEConfig, layer: str = "ours", ep_size: int = 1) -> None:
        if layer == "ours":
            factory = lambda c, _: MoELayer(c.n_embd, moe, bias=c.bias)  # noqa: E731
        else:
            from month4_moe.ds_moe import DeepSpeedMoEMLP

            factory = lambda c, _: DeepSpeedMoEMLP(c.n_embd, moe, bias=c.bias, ep_size=ep_size)  # noqa: E731
        super().__init__(cfg, mlp_factory=factory)
        self.moe_cfg = moe
        # GPT-2's scaled init of the projection into the residual stream, for the experts' second matrix.
        std = 0.02 / math.sqrt(2 * cfg.n_layer)
        for block in self.blocks:
            experts = block.mlp.experts if layer == "ours" else block.mlp.local_experts
            with torch.no_grad():
                for name, p in experts.named_parameters():
                    if name.endswith(("w2", "proj.weight")):
                        p.normal_(std=std)

    def moe_layers(self) -> list[nn.Module]:
        return [block.mlp for block in self.blocks]

    def set_tracking(self, on: bool) -> None:
        """Aux losses and load metrics on (training, analysis) or off (pure inference)."""
        for layer in self.moe_layers():
            layer.track = on

    def generate(self, *args, **kwargs) -> Tensor:
        """Month 1's sampler, without the routers' bookkeeping (it costs more than a token's expert)."""
        tracking = [getattr(layer, "track", True) for layer in self.moe_layers()]
        self.set_tracking(False)
        try:
            return super().generate(*args, **kwargs)
        finally:
            for layer, on in zip(self.moe_layers(), tracking):
                layer.track = on

    def aux_loss(self) -> Tensor:
        """The routers' losses of the last forward, summed over layers."""
        return sum(layer.aux_loss for layer in self.moe_layers())

    def load_stats(self) -> list[LoadStats | None]:
        return [layer.stats for layer in self.moe_layers()]


def dense_gpt(cfg: GPTConfig, hidden: int = 0) -> GPT:
    """Month 1's GPT; with `hidden`, an MLP of that width instead of 4 x n_embd."""
    if not hidden or hidden == 4 * cfg.n_embd:
        return GPT(cfg)
    return GPT(cfg, mlp_factory=lambda c, _: ExpertMLP(c.n_embd, hidden, "gelu", c.bias))


def lm_loss(model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
    """Cross-entropy, plus the routers' auxiliary losses while training (evaluation reports the
    language-model loss alone, comparable with a dense model's)."""
    _, loss = model(*batch)
    if model.training and isinstance(model, MoEGPT):
        loss = loss + model.aux_loss()
    return loss


def param_counts(model: nn.Module) -> dict[str, int]:
    """Total parameters, and those one token uses (k of the E experts in each MoE layer)."""
    total = sum(p.numel() for p in model.parameters())
    unused = 0
    if isinstance(model, MoEGPT) and model.moe_cfg.routing == "topk":
        for layer in model.moe_layers():
            if isinstance(layer, MoELayer):
                per_expert = sum(p[0].numel() for p in layer.experts.parameters())
                unused += (layer.cfg.n_experts - layer.cfg.top_k) * per_expert
    return {"total": total, "active": total - unused}


def flops_batch(data: DomainData, block_size: int) -> Tensor:
    """One held-out window of each domain: real text, routed as real text is (random bytes are not)."""
    return torch.cat([eval_windows(data.ids["val"][d], block_size, block_size)[0] for d in DOMAINS])


@torch.no_grad()
def flops_per_token(model: nn.Module, x: Tensor) -> float:
    """Forward FLOPs per token of the batch x, counted by torch's FlopCounterMode (matmuls and attention
    as they run: with the sort dispatch an expert computes only the tokens routed to it and kept)."""
    was_training = model.training
    model.eval()
    x = x.to(next(model.parameters()).device)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    model.train(was_training)
    return counter.get_total_flops() / x.numel()


def analytic_flops_per_token(cfg: GPTConfig, hidden: int, k: int = 1, n_experts: int = 0) -> float:
    """2 x multiply-adds of one token's forward, at full context (attention over block_size keys):
    qkv + out projections, scores and values, the k active MLPs, the router, the head."""
    d, t = cfg.n_embd, cfg.block_size
    per_layer = 2 * 4 * d * d + 2 * 2 * t * d + k * 2 * 2 * d * hidden + 2 * d * n_experts
    return cfg.n_layer * per_layer + 2 * d * cfg.vocab_size


@torch.no_grad()
def domain_losses(model: nn.Module, data: DomainData, split: str, block_size: int, max_tokens: int,
                  batch: int = 16) -> dict[str, float]:
    """Mean next-token loss (nats/byte) per domain on the first max_tokens of `split`."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = {}
    for domain in DOMAINS:
        x, y = eval_windows(data.ids[split][domain], block_size, max_tokens)
        total = 0.0
        for i in range(0, len(x), batch):
            _, loss = model(x[i:i + batch].to(device), y[i:i + batch].to(device))
            total += loss.item() * len(x[i:i + batch])
        out[domain] = total / len(x)
    model.train(was_training)
    return out


@torch.no_grad()
def routing_counts(model: MoEGPT, data: DomainData, split: str, block_size: int, max_tokens: int,
                   batch: int = 16) -> list[Tensor]:
    """Per layer, a [domain, expert] count of first choices over the same evaluation windows."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    n_experts = model.moe_cfg.n_experts
    counts = [torch.zeros(len(DOMAINS), n_experts, dtype=torch.long) for _ in model.blocks]
    for d, domain in enumerate(DOMAINS):
        x, _ = eval_windows(data.ids[split][domain], block_size, max_tokens)
        for i in range(0, len(x), batch):
            model(x[i:i + batch].to(device))
            for layer, block in enumerate(model.blocks):
                counts[layer][d] += torch.bincount(block.mlp.last_choice.cpu(), minlength=n_experts)
    model.train(was_training)
    return counts


# -- checkpoints -----------------------------------------------------------------------------------------
def checkpoint_extra(model: nn.Module, tokenizer_dict: dict) -> dict:
    """What a checkpoint holds besides the weights, to rebuild the model (plain data only)."""
    extra = {"month": "month4_moe", "model_config": asdict(model.cfg), "tokenizer": tokenizer_dict}
    if isinstance(model, MoEGPT):
        extra.update(arch="moe", moe_config=asdict(model.moe_cfg))
    else:
        extra.update(arch="dense", dense_hidden=model.blocks[0].mlp.proj.in_features)
    return extra


def describe(state: dict) -> str:
    if state.get("arch") == "moe":
        moe = state["moe_config"]
        return f"a {moe['n_experts']}-expert top-{moe['top_k']} MoE"
    return f"a dense model (MLP width {state.get('dense_hidden')})"


def read_lm_checkpoint(path: str | Path) -> dict:
    state = checkpoint.load(path)
    if not isinstance(state, dict) or state.get("month") != "month4_moe" or "model" not in state:
        raise UserError(f"{path} is not a month-4 language-model checkpoint (written by `python -m month4_moe "
                        "train` or `btx`)")
    return state


def model_from_state(state: dict, path: str | Path = "checkpoint") -> nn.Module:
    """Rebuild the model a checkpoint describes and load its weights."""
    try:
        cfg = GPTConfig(**state["model_config"])
        if state["arch"] == "moe":
            model = MoEGPT(cfg, MoEConfig(**state["moe_config"]))
        else:
            model = dense_gpt(cfg, state["dense_hidden"])
        model.load_state_dict(state["model"])
    except (TypeError, KeyError, RuntimeError, ValueError) as err:
        raise UserError(f"{path} holds {describe(state)} of another version ({type(err).__name__}); retrain it "
                        "with this version") from None
    return model


def load_lm(path: str | Path) -> tuple[nn.Module, dict]:
    state = read_lm_checkpoint(path)
    return model_from_state(state, path), state


def check_same_model(path: str | Path, model: nn.Module) -> None:
    """A checkpoint at `path` must hold the model these options build (resuming would fail halfway)."""
    state = read_lm_checkpoint(path)
    ours = checkpoint_extra(model, {})
    if describe(state) != describe(ours):
        raise UserError(f"{path} holds {describe(state)}, but these options build {describe(ours)}: resume it with "
                        "the options it was started with, or use another --out-dir (or --resume false)")
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if {k: tuple(v.shape) for k, v in state["model"].items()} != shapes:
        raise UserError(f"{path} holds {describe(state)} of other sizes than these options build: resume it with "
                        "the options it was started with, or use another --out-dir (or --resume false)")

