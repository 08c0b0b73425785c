"""Attention, written out: softmax, scaled dot-product attention, masks, multi-head.

Shapes: B batch, H heads, T sequence length, D head width, C = H * D model width.
Masks are boolean and mean "may attend" (True) - the convention of
`torch.nn.functional.scaled_dot_product_attention`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from month1_transformer.positional import apply_rope


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)); subtracting the max first keeps exp() from overflowing,
    and a row that is all -inf (fully masked) gives zeros instead of NaN."""
    x_max = x.amax(dim=dim, keepdim=True)
    x_max = torch.where(torch.isfinite(x_max), x_max, torch.zeros_like(x_max))
    e = torch.exp(x - x_max)
    return e / e.sum(dim=dim, keepdim=True).clamp_min(torch.finfo(e.dtype).tiny)


def causal_mask(t_q: int, t_k: int, device: torch.device | None = None) -> Tensor:
    """(t_q, t_k) bool: query i sees keys j <= i + (t_k - t_q).

    With a KV cache the t_q new queries are the *last* t_q positions, so the mask is
    aligned bottom-right (for t_q == t_k it is the usual lower triangle)."""
    offset = t_k - t_q
    q = torch.arange(t_q, device=device)[:, None]
    k = torch.arange(t_k, device=device)[None, :]
    return k <= q + offset


def padding_mask(attention_mask: Tensor) -> Tensor:
    """(B, T) of 1 = token, 0 = padding  ->  (B, 1, 1, T) bool that hides padded keys."""
    return attention_mask.bool()[:, None, None, :]


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
) -> Tensor:
    """softmax(q k^T / sqrt(D) + masking) v.

    q: (..., T_q, D), k and v: (..., T_k, D); mask: bool, broadcastable to (..., T_q, T_k).
    `dropout_p` drops attention weights (training only; pass 0.0 at inference).
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if is_causal:
        scores = scores.masked_fill(~causal_mask(q.size(-2), k.size(-2), q.device), float("-inf"))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = softmax(scores, dim=-1)
    if dropout_p:
        weights = F.dropout(weights, dropout_p)
    return weights @ v


def fused_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, is_causal: bool, dropout_p: float) -> Tensor:
    """torch's fused SDPA. On CPU its bf16 kernel ran 4x slower than fp32 at head width 32
    (forward + backward, measured by benchmarks/month1_baby_gpt.py --sections attention),
    so under bf16 autocast the CPU attends in fp32; the projections around it stay bf16."""
    if q.device.type == "cpu" and q.dtype == torch.bfloat16:
        with torch.autocast("cpu", enabled=False):
            y = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask,
                                               is_causal=is_causal, dropout_p=dropout_p)
        return y.to(torch.bfloat16)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal, dropout_p=dropout_p)


class KVCache:
    """Keys and values of the positions seen so far, one (B, H, T, D) pair per layer, so
    decoding a new token costs one token's work instead of re-running the whole prefix."""

    def __init__(self, n_layer: int) -> None:
        self.keys: list[Tensor | None] = [None] * n_layer
        self.values: list[Tensor | None] = [None] * n_layer

    @property
    def length(self) -> int:
        return 0 if self.keys[0] is None else self.keys[0].size(2)

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v

    def reset(self) -> None:
        self.keys = [None] * len(self.keys)
        self.values = [None] * len(self.values)


class MultiHeadAttention(nn.Module):
    """H heads of attention over C = H * D channels, with Q/K/V and output projections.

    `fused=True` calls torch's fused SDPA kernel (same result, faster, less memory);
    `fused=False` runs the explicit version above so every step can be inspected.
    """

    def __init__(
        self, d_model: int, n_head: int, bias: bool = True, dropout: float = 0.0, fused: bool = False
    ) -> None:
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"d_model={d_model} is not divisible by n_head={n_head}")
        self.n_head = n_head
        self.head_dim = d_model // n_head
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self.dropout = dropout
        self.fused = fused

    def _split_heads(self, x: Tensor) -> Tensor:  # (B, T, C) -> (B, H, T, D)
        b, t, _ = x.shape
        return x.view(b, t, self.n_head, self.head_dim).transpose(1, 2)

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        is_causal: bool = False,
        rope: tuple[Tensor, Tensor] | None = None,
        cache: KVCache | None = None,
        layer: int = 0,
    ) -> Tensor:
        """x: (B, T, C) -> (B, T, C). `rope`: (cos, sin) for these T positions.
        `cache`: keys/values of earlier positions; this call appends its own to `cache[layer]`."""
        q, k, v = (self._split_heads(p(x)) for p in (self.q_proj, self.k_proj, self.v_proj))
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        t_q, t_k = q.size(2), k.size(2)
        if is_causal and (t_q != t_k or mask is not None):
            # Cached decoding needs bottom-right causal alignment, and a causal mask combined
            # with a padding mask needs one mask: express both as a single boolean mask.
            causal = causal_mask(t_q, t_k, x.device)
            mask = causal if mask is None else mask & causal
            is_causal = False
        dropout_p = self.dropout if self.training else 0.0
        if self.fused:
            y = fused_attention(q, k, v, mask, is_causal, dropout_p)
        else:
            y = scaled_dot_product_attention(q, k, v, mask=mask, is_causal=is_causal, dropout_p=dropout_p)
        b, _, t, _ = y.shape
        out = self.out_proj(y.transpose(1, 2).reshape(b, t, -1))
        return out
