"""A delta-rule memory layer (DeltaNet: Schlag et al. 2021, Yang et al. 2024) between Mamba layers,
on Mamba's streaming interface: a state built to hold key -> value facts.

Each head keeps a (d_key, d_value) matrix S. Reading is S^T q; writing is the delta rule,

    S_t = S_{t-1} + beta_t k_t (v_t - S_{t-1}^T k_t)^T

which moves what S returns for the key k_t a fraction beta_t of the way to v_t: writing a key
again overwrites it instead of adding a blur, and keys (L2-normalised) that are not alike leave
each other alone. Mamba instead decays every channel of its state at every byte and adds
delta B x to it: a fact read 100k bytes ago has had 100k chances to fade.

The write strength beta_t is a *hard* gate, clamp(w . x_t + b, 0, 1): on prose it can be exactly
0, and then the state is exactly unchanged, so what was written is still there after any length
of text the gate ignores (a sigmoid gate is never 0: at 1e-5 per byte, a million bytes wipe it).

- `delta_rule_recurrent`: the rule one token at a time (the definition; also `step`).
- `delta_rule_chunked`: the same numbers a chunk at a time (the WY form of Yang et al. 2024): in
  a chunk, the corrected values u_t = beta_t (v_t - S^T k_t - sum_{i<t} (k_i . k_t) u_i) solve one
  triangular system, then outputs and the next state are matrix products.

The layers: Mamba for every layer but each `delta_every`-th (default 2 with 2 layers: Mamba then the
delta rule): the Mamba layer gathers the words before a byte (a key such as "my sister's old slant
is " spans many bytes) and the delta layer stores and looks them up. Q, K and V each have their own
short causal conv (as DeltaNet), so a key can describe the bytes before the value it stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from month1_transformer.norm import RMSNorm
from month3_mamba.checks import require_at_least
from month3_mamba.model import (
    MambaConfig,
    PreNormBlock,
    StreamingLM,
    causal_depthwise_conv1d,
    interleave,
    rescale_residual_writes,
)


@dataclass
class DeltaConfig(MambaConfig):
    delta_every: int = field(default=2, metadata={"help": "every Nth layer is a delta-rule layer (the others Mamba)"})
    n_head: int = field(default=4, metadata={"help": "delta-rule heads (each a d_inner/n_head square state)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least(self, 1, "delta_every", "n_head")
        if self.d_inner % self.n_head:
            raise ValueError(f"d_inner={self.d_inner} (expand x d_model) must be divisible by n_head={self.n_head}")

    @property
    def head_dim(self) -> int:
        return self.d_inner // self.n_head


@dataclass
class DeltaLayerState:
    """All a delta-rule layer remembers: the conv's last inputs and one matrix per head."""

    conv: Tensor  # (b, 3 * d_inner, d_conv - 1)
    memory: Tensor  # (b, heads, head_dim, head_dim): S, keys by values


def delta_rule_recurrent(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
    """q, k, v (b, h, t, d); beta (b, h, t); state (b, h, d, d) -> (outputs (b, h, t, d), last state)."""
    outs = []
    for t in range(q.size(2)):
        k_t, v_t = k[:, :, t], v[:, :, t]
        error = v_t - torch.einsum("bhkv,bhk->bhv", state, k_t)
        state = state + beta[:, :, t, None, None] * k_t[..., :, None] * error[..., None, :]
        outs.append(torch.einsum("bhkv,bhk->bhv", state, q[:, :, t]))
    return torch.stack(outs, 2), state


def delta_rule_chunked(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, state: Tensor,
                       chunk_size: int = 64) -> tuple[Tensor, Tensor]:
    """Same contract and numbers as delta_rule_recurrent, a chunk at a time."""
    b, h, t, d = q.shape
    pad = -t % chunk_size
    if pad:  # padded positions write nothing (beta 0) and their outputs are dropped
        q, k, v = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v))
        beta = F.pad(beta, (0, pad))
    n = (t + pad) // chunk_size
    q, k, v = (x.reshape(b, h, n, chunk_size, d) for x in (q, k, v))
    beta = beta.reshape(b, h, n, chunk_size, 1)
    eye = torch.eye(chunk_size, dtype=q.dtype, device=q.device)
    # (I + diag(beta) tril(K K^T, -1)) [W | U] = diag(beta) [K | V]: every chunk at once.
    system = eye + torch.tril(beta * (k @ k.transpose(-1, -2)), -1)
    wu = torch.linalg.solve_triangular(system, torch.cat([beta * k, beta * v], -1), upper=False, unitriangular=True)
    w, u = wu.split(d, -1)
    scores = torch.tril(q @ k.transpose(-1, -2))  # a position reads its own write
    outs = []
    for c in range(n):  # the state from chunk to chunk
        u_c = u[:, :, c] - w[:, :, c] @ state  # the values less what the state already returns for the keys
        outs.append(q[:, :, c] @ state + scores[:, :, c] @ u_c)
        state = state + k[:, :, c].transpose(-1, -2) @ u_c
    return torch.cat(outs, 2)[:, :, :t], state


class DeltaMixer(nn.Module):
    def __init__(self, cfg: DeltaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d_inner = cfg.d_inner
        self.in_proj = nn.Linear(cfg.d_model, 4 * d_inner, bias=cfg.bias)  # q, k, v and the output gate z
        self.conv1d = nn.Conv1d(3 * d_inner, 3 * d_inner, cfg.d_conv, groups=3 * d_inner, bias=cfg.conv_bias)
        self.beta_proj = nn.Linear(cfg.d_model, cfg.n_head)
        nn.init.constant_(self.beta_proj.bias, 0.5)  # writes start half-strength: the gate starts open, not dead
        self.o_norm = RMSNorm(cfg.head_dim, eps=cfg.norm_eps)
        self.out_proj = nn.Linear(d_inner, cfg.d_model, bias=cfg.bias)

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> DeltaLayerState:
        cfg = self.cfg
        return DeltaLayerState(
            conv=torch.zeros(batch_size, 3 * cfg.d_inner, cfg.d_conv - 1, device=device),
            memory=torch.zeros(batch_size, cfg.n_head, cfg.head_dim, cfg.head_dim, device=device),
        )

    def project(self, x: Tensor, conv_state: Tensor | None) -> tuple[Tensor, ...]:
        """x (b, l, d_model) -> q, k, v (b, h, l, head_dim), beta (b, h, l), z (b, l, d_inner), conv state."""
        b, length, _ = x.shape
        cfg = self.cfg
        qkv, z = self.in_proj(x).split([3 * cfg.d_inner, cfg.d_inner], -1)
        qkv, conv_state = causal_depthwise_conv1d(qkv.transpose(1, 2), self.conv1d.weight, self.conv1d.bias, conv_state)
        heads = F.silu(qkv).reshape(b, 3, cfg.n_head, cfg.head_dim, length).permute(1, 0, 2, 4, 3)
        q, k = F.normalize(heads[0], dim=-1), F.normalize(heads[1], dim=-1)
        beta = self.beta_proj(x).clamp(0, 1).transpose(1, 2)  # the hard write gate
        return q, k, heads[2], beta, z, conv_state

    def output(self, o: Tensor, z: Tensor) -> Tensor:
        """o (b, h, l, head_dim), z (b, l, d_inner) -> (b, l, d_model)."""
        o = self.o_norm(o).transpose(1, 2).flatten(2)
        return self.out_proj(o * F.silu(z))

    def forward(self, x: Tensor, state: DeltaLayerState | None = None) -> Tensor:
        q, k, v, beta, z, conv_state = self.project(x, None if state is None else state.conv)
        memory = q.new_zeros(q.size(0), self.cfg.n_head, self.cfg.head_dim, self.cfg.head_dim) \
            if state is None else state.memory
        o, memory = delta_rule_chunked(q, k, v, beta, memory, self.cfg.chunk_size)
        if state is not None:
            state.conv, state.memory = conv_state, memory
        return self.output(o, z)

    def step(self, x: Tensor, state: DeltaLayerState) -> Tensor:
        q, k, v, beta, z, state.conv = self.project(x[:, None], state.conv)
        o, state.memory = delta_rule_recurrent(q, k, v, beta, state.memory)
        return self.output(o, z)[:, 0]


class DeltaBlock(PreNormBlock):
    """x + DeltaMixer(RMSNorm(x))."""

    def __init__(self, cfg: DeltaConfig) -> None:
        super().__init__(cfg, DeltaMixer(cfg))


class DeltaLM(StreamingLM):
    def __init__(self, cfg: DeltaConfig) -> None:
        super().__init__(cfg, interleave(cfg, cfg.delta_every, DeltaBlock))
        rescale_residual_writes(self, cfg.n_layer)


@torch.no_grad()
def write_rates(model: DeltaLM, ids: Tensor) -> list[Tensor]:
    """Per delta-rule layer, (heads,): the share of the bytes of `ids` (b, l) at which each head writes (beta > 0).
    Over prose a long memory should hardly write: every write there takes a little of what the facts left."""
    gates: list[Tensor] = []
    hooks = [block.mixer.beta_proj.register_forward_hook(lambda module, args, out: gates.append(out.clamp(0, 1)))
             for block in model.backbone.layers if isinstance(block, DeltaBlock)]
    try:
        model(ids)
    finally:
        for hook in hooks:
            hook.remove()
    return [(gate > 0).float().mean((0, 1)) for gate in gates]
