"""The Mamba language model (Gu & Dao 2023), from scratch, with streaming.

    tokens -> embeddings -> n_layer x [x + MambaMixer(RMSNorm(x))] -> RMSNorm -> LM head (tied)

One mixer: in_proj splits into a main branch x and a gate z; x goes through a causal
depthwise conv1d (a few tokens of local context) and SiLU, then x_proj makes the
input-dependent delta (through a low-rank dt_proj), B and C; the selective scan runs
h_t = exp(delta_t A) h_{t-1} + delta_t B_t x_t, y_t = C_t h_t + D x_t; the output is gated by
SiLU(z) and projected back by out_proj.

Parameter names are those of Hugging Face's `MambaForCausalLM` (backbone.embeddings,
backbone.layers.N.norm / .mixer.{in_proj, conv1d, x_proj, dt_proj, A_log, D, out_proj},
backbone.norm_f, lm_head), so its state dict loads as is (see hf.py).

Streaming: a layer's whole memory of the past is a `MambaLayerState` - the last d_conv - 1
conv inputs and the (d_inner, d_state) SSM state - whatever the length read. Pass a state
from `new_state()` to `forward` (chunked prefill) or `step` (one token) and it is carried on.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from month1_transformer.norm import RMSNorm
from month3_mamba.checks import require_at_least
from month3_mamba.scan import SCAN_MODES, selective_scan


@dataclass
class MambaConfig:
    vocab_size: int = field(default=256, metadata={"help": "vocabulary size (256: bytes)"})
    d_model: int = field(default=64, metadata={"help": "model width"})
    n_layer: int = field(default=2, metadata={"help": "Mamba blocks"})
    d_state: int = field(default=16, metadata={"help": "SSM state size N per channel"})
    d_conv: int = field(default=4, metadata={"help": "causal conv1d kernel width"})
    expand: int = field(default=2, metadata={"help": "d_inner = expand * d_model"})
    dt_rank: int = field(default=0, metadata={"help": "rank of the delta projection (0: ceil(d_model / 16))"})
    conv_bias: bool = field(default=True, metadata={"help": "bias in the conv1d"})
    bias: bool = field(default=False, metadata={"help": "biases in in_proj / out_proj"})
    norm_eps: float = field(default=1e-5, metadata={"help": "RMSNorm epsilon"})
    tie_embeddings: bool = field(default=True, metadata={"help": "share the embedding and the LM head"})
    dt_min: float = field(default=0.001, metadata={"help": "smallest initial delta"})
    dt_max: float = field(default=0.1, metadata={"help": "largest initial delta"})
    scan: str = field(default="sequential", metadata={"help": "selective scan", "choices": SCAN_MODES})
    chunk_size: int = field(default=32, metadata={"help": "chunk length of the chunked scan"})

    def __post_init__(self) -> None:
        if self.scan not in SCAN_MODES:
            raise ValueError(f"scan must be one of {SCAN_MODES}, got {self.scan!r}")
        require_at_least(self, 1, "vocab_size", "d_model", "n_layer", "d_state", "d_conv", "expand", "chunk_size")
        require_at_least(self, 0, "dt_rank")

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def rank(self) -> int:
        return self.dt_rank or math.ceil(self.d_model / 16)


@dataclass
class MambaLayerState:
    """All a Mamba layer remembers of the past, whatever its length."""

    conv: Tensor  # (b, d_inner, d_conv - 1): the last inputs the causal conv still needs
    ssm: Tensor  # (b, d_inner, d_state)


def causal_depthwise_conv1d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, state: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """y[:, c, t] = bias[c] + sum_j weight[c, j] * x[:, c, t - (k - 1) + j]: each channel its own
    k-tap filter over the current and k - 1 previous steps, never the future.

    x: (b, d, l); weight: (d, 1, k) as nn.Conv1d stores it, or (d, k); state: (b, d, k - 1),
    the inputs before x (zeros at the start). Returns (y (b, d, l), new state (b, d, k - 1))."""
    d, k = weight.size(0), weight.size(-1)
    prev = x.new_zeros(x.size(0), d, k - 1) if state is None else state
    padded = torch.cat([prev, x], dim=-1)
    y = F.conv1d(padded, weight.reshape(d, 1, k), bias, groups=d)
    return y, padded[..., padded.size(-1) - (k - 1) :]


class MambaMixer(nn.Module):
    """The selective SSM layer (HF's `MambaMixer`; the paper's "Mamba block" without the norm)."""

    def __init__(self, cfg: MambaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d_inner, n, r = cfg.d_inner, cfg.d_state, cfg.rank
        self.in_proj = nn.Linear(cfg.d_model, 2 * d_inner, bias=cfg.bias)
        # A Conv1d module only to hold weight (d_inner, 1, d_conv) and bias under HF's names;
        # the forward pass calls causal_depthwise_conv1d, which also carries the streaming state.
        self.conv1d = nn.Conv1d(d_inner, d_inner, cfg.d_conv, groups=d_inner, bias=cfg.conv_bias)
        self.x_proj = nn.Linear(d_inner, r + 2 * n, bias=False)
        self.dt_proj = nn.Linear(r, d_inner, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(d_inner, 1))
        self.D = nn.Parameter(torch.ones(d_inner))
        # As state-spaces/mamba: the decay rates and the skip are not shrunk towards zero.
        self.A_log._no_weight_decay = True
        self.D._no_weight_decay = True
        self.out_proj = nn.Linear(d_inner, cfg.d_model, bias=cfg.bias)
        self._init_dt()

    @torch.no_grad()
    def _init_dt(self) -> None:
        """Mamba's init: delta starts log-uniform in [dt_min, dt_max] (softplus of the bias),
        so channels begin with a spread of memory lengths."""
        cfg = self.cfg
        nn.init.uniform_(self.dt_proj.weight, -(cfg.rank**-0.5), cfg.rank**-0.5)
        dt = torch.exp(torch.rand(cfg.d_inner) * (math.log(cfg.dt_max) - math.log(cfg.dt_min)) + math.log(cfg.dt_min))
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> MambaLayerState:
        cfg = self.cfg
        return MambaLayerState(
            conv=torch.zeros(batch_size, cfg.d_inner, cfg.d_conv - 1, device=device),
            ssm=torch.zeros(batch_size, cfg.d_inner, cfg.d_state, device=device),
        )

    def ssm_params(self, xs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """xs (..., d_inner) -> delta before bias and softplus (..., d_inner), B, C (..., d_state)."""
        n = self.cfg.d_state
        dt, B, C = self.x_proj(xs).split([self.cfg.rank, n, n], dim=-1)
        return dt @ self.dt_proj.weight.T, B, C

    def forward(self, x: Tensor, state: MambaLayerState | None = None) -> Tensor:
        """x: (b, l, d_model) -> (b, l, d_model). With `state`, continue from it and update it."""
        xs, z = self.in_proj(x).transpose(1, 2).chunk(2, dim=1)  # (b, d_inner, l) each
        conv_in = None if state is None else state.conv
        xs, conv_state = causal_depthwise_conv1d(xs, self.conv1d.weight, self.conv1d.bias, conv_in)
        xs = F.silu(xs)
        delta, B, C = self.ssm_params(xs.transpose(1, 2))
        A = -torch.exp(self.A_log.float())
        y, ssm_state = selective_scan(
            xs, delta.transpose(1, 2), A, B.transpose(1, 2), C.transpose(1, 2), self.D, z,
            delta_bias=self.dt_proj.bias, delta_softplus=True, initial_state=None if state is None else state.ssm,
            return_last_state=True, mode=self.cfg.scan, chunk_size=self.cfg.chunk_size,
        )
        if state is not None:
            state.conv, state.ssm = conv_state, ssm_state
        return self.out_proj(y.transpose(1, 2))

    def step(self, x: Tensor, state: MambaLayerState) -> Tensor:
        return mamba_step(self, x, state)


def mamba_step(mixer: MambaMixer, x: Tensor, state: MambaLayerState) -> Tensor:
    """One token through the mixer as a recurrence: x (b, d_model) -> (b, d_model), updating `state`.

    Same numbers as `mixer.forward` on the whole sequence, at O(1) cost and memory per token."""
    xs, z = mixer.in_proj(x).chunk(2, dim=-1)  # (b, d_inner)
    window = torch.cat([state.conv, xs[..., None]], dim=-1)  # (b, d_inner, d_conv)
    xs = (window * mixer.conv1d.weight[:, 0, :]).sum(-1)
    if mixer.conv1d.bias is not None:
        xs = xs + mixer.conv1d.bias
    xs = F.silu(xs)
    dt, B, C = mixer.ssm_params(xs)
    delta = F.softplus(dt + mixer.dt_proj.bias)
    A = -torch.exp(mixer.A_log.float())
    h = torch.exp(delta[..., None] * A) * state.ssm + (delta * xs)[..., None] * B[:, None, :]
    y = (h * C[:, None, :]).sum(-1) + mixer.D * xs
    state.conv, state.ssm = window[..., 1:], h
    return mixer.out_proj(y * F.silu(z))


class PreNormBlock(nn.Module):
    """Pre-norm residual around a streaming mixer: x + mixer(RMSNorm(x)), its state the mixer's."""

    def __init__(self, cfg: MambaConfig, mixer: nn.Module) -> None:
        super().__init__()
        self.norm = RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.mixer = mixer

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> Any:
        return self.mixer.init_state(batch_size, device)

    def forward(self, x: Tensor, state: Any = None) -> Tensor:
        return x + self.mixer(self.norm(x), state)

    def step(self, x: Tensor, state: Any) -> Tensor:
        return x + self.mixer.step(self.norm(x), state)


class MambaBlock(PreNormBlock):
    """x + MambaMixer(RMSNorm(x))."""

    def __init__(self, cfg: MambaConfig) -> None:
        super().__init__(cfg, MambaMixer(cfg))


class MambaBackbone(nn.Module):
    """Embeddings, the layers, the final norm (HF's `backbone`)."""

    def __init__(self, cfg, layers: list[nn.Module]) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(layers)
        self.norm_f = RMSNorm(cfg.d_model, eps=cfg.norm_eps)


class StreamingLM(nn.Module):
    """A residual stack of layers that each carry a constant-size state: the streaming interface
    shared by Mamba, the hybrid and RWKV.

        logits, loss = model(idx, targets)            # training, whole sequences
        state = model.new_state(batch_size)
        logits, _ = model(chunk, state=state)         # chunked prefill: state carried on
        logits = model.step(token_ids, state)         # one token at a time, the recurrence

    Every layer has `init_state(b, device)`, `forward(x, state=None)` and `step(x, state)`."""

    def __init__(self, cfg, layers: list[nn.Module]) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = MambaBackbone(cfg, layers)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.backbone.embeddings.weight
        nn.init.normal_(self.backbone.embeddings.weight, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def config_dict(self) -> dict:
        return asdict(self.cfg)

    def new_state(self, batch_size: int = 1) -> list:
        device = self.lm_head.weight.device
        return [layer.init_state(batch_size, device) for layer in self.backbone.layers]

    def forward(
        self, idx: Tensor, targets: Tensor | None = None, state: list | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """idx (b, l) -> logits (b, l, vocab), and the mean cross-entropy over targets != -1."""
        x = self.backbone.embeddings(idx)
        for i, layer in enumerate(self.backbone.layers):
            x = layer(x, None if state is None else state[i])
        logits = self.lm_head(self.backbone.norm_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def step(self, idx: Tensor, state: list) -> Tensor:
        """idx (b,) one token per sequence -> logits (b, vocab); `state` advances one token."""
        x = self.backbone.embeddings(idx)
        for layer, layer_state in zip(self.backbone.layers, state):
            x = layer.step(x, layer_state)
        return self.lm_head(self.backbone.norm_f(x))


class MambaLM(StreamingLM):
    """A Mamba language model; `MambaLM(MambaConfig(...))`."""

    def __init__(self, cfg: MambaConfig) -> None:
        super().__init__(cfg, [MambaBlock(cfg) for _ in range(cfg.n_layer)])
        rescale_residual_writes(self, cfg.n_layer)


def interleave(cfg: MambaConfig, every: int, block: type[nn.Module]) -> list[nn.Module]:
    """cfg.n_layer blocks: `block(cfg)` last in each group of `every` (so never first), Mamba blocks elsewhere."""
    return [block(cfg) if (i + 1) % every == 0 else MambaBlock(cfg) for i in range(cfg.n_layer)]


@torch.no_grad()
def rescale_residual_writes(model: nn.Module, n_layer: int) -> None:
    """Mamba's "prenorm residual rescale": the projections that write into the residual stream
    (every `out_proj`) start 1/sqrt(n_layer) smaller, so the stream's size does not grow with depth."""
    for name, p in model.named_parameters():
        if name.endswith("out_proj.weight"):
            p /= math.sqrt(n_layer)


def state_nbytes(state: list) -> int:
    """Bytes held by a model's streaming state (every tensor in every layer's state)."""
    total = 0
    for layer_state in state:
        for value in vars(layer_state).values():
            if isinstance(value, Tensor):
                total += value.numel() * value.element_size()
    return total
