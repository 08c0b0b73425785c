"""A hybrid stack: Mamba layers with a sliding-window attention layer every `attn_every` layers
(Jamba uses 1 attention : 7 Mamba; `attn_every=4` is 1 : 3; the default 2 with the default 2 layers
is Mamba then attention), on Mamba's streaming interface.

Attention is month 1's `MultiHeadAttention`. Two choices keep streaming memory bounded and
streaming equal to the full forward:
- a sliding window: each position attends to itself and the `window - 1` before it, so the
  attention state is at most window - 1 keys and values per layer, whatever the length read
  (the Mamba layers carry what is older);
- no positional encoding in the attention layers (as Jamba): the Mamba layers before them
  already make each position's vector depend on order, and nothing grows with the position.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from month1_transformer.attention import MultiHeadAttention
from month1_transformer.norm import RMSNorm
from month3_mamba.checks import require_at_least
from month3_mamba.model import MambaConfig, StreamingLM, interleave, rescale_residual_writes


@dataclass
class HybridConfig(MambaConfig):
    # 2: with the default 2 layers, one is attention (4 would leave no attention at all).
    attn_every: int = field(default=2, metadata={"help": "every Nth layer is attention (Jamba: 8)"})
    n_head: int = field(default=4, metadata={"help": "attention heads"})
    window: int = field(default=256, metadata={"help": "sliding attention window in tokens"})

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least(self, 1, "attn_every", "n_head", "window")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_head={self.n_head}")


@dataclass
class WindowState:
    """The keys and values of the last window - 1 positions: an attention layer's whole memory."""

    k: Tensor  # (b, heads, <= window - 1, head_dim)
    v: Tensor
    window: int

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """The KVCache protocol month 1's attention calls: returns cached + new, keeps the last window - 1."""
        k_all, v_all = torch.cat([self.k, k], 2), torch.cat([self.v, v], 2)
        start = max(0, k_all.size(2) - (self.window - 1))
        self.k, self.v = k_all[:, :, start:], v_all[:, :, start:]
        return k_all, v_all


def sliding_window_mask(t_q: int, n_cached: int, window: int, device=None) -> Tensor:
    """(t_q, n_cached + t_q) bool: query i (after n_cached earlier keys) sees keys j with
    i - window < j - n_cached <= i: itself and the window - 1 positions before it."""
    q = torch.arange(t_q, device=device)[:, None]
    k = torch.arange(-n_cached, t_q, device=device)[None, :]
    return (k <= q) & (k > q - window)


class AttentionBlock(nn.Module):
    """Pre-norm residual: x + sliding-window attention(RMSNorm(x))."""

    def __init__(self, cfg: HybridConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.norm = RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.attn = MultiHeadAttention(cfg.d_model, cfg.n_head, bias=False, fused=True)

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> WindowState:
        empty = torch.zeros(batch_size, self.cfg.n_head, 0, self.cfg.d_model // self.cfg.n_head, device=device)
        return WindowState(empty, empty.clone(), self.cfg.window)

    def forward(self, x: Tensor, state: WindowState | None = None) -> Tensor:
        n_cached = 0 if state is None else state.k.size(2)
        mask = sliding_window_mask(x.size(1), n_cached, self.cfg.window, x.device)
        return x + self.attn(self.norm(x), mask=mask, cache=state)

    def step(self, x: Tensor, state: WindowState) -> Tensor:
        return self.forward(x[:, None], state)[:, 0]


class HybridLM(StreamingLM):
    def __init__(self, cfg: HybridConfig) -> None:
        super().__init__(cfg, interleave(cfg, cfg.attn_every, AttentionBlock))
        rescale_residual_writes(self, cfg.n_layer)
