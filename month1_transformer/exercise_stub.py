"""Month 1 graded exercises: your implementation.

Fill in every `raise NotImplementedError(...)`, then grade your work:

    pytest month1_transformer --impl my_work/month1_transformer.py            # all tasks
    pytest month1_transformer --impl my_work/month1_transformer.py -m m1_t1   # one task

Tests compare your code with the reference (month1_transformer/) and with PyTorch's own
implementations, with explicit tolerances. Shapes: B batch, H heads, T length, D head
width, C = H * D model width. You may use torch tensor operations, but not the
functions you are asked to write (no F.softmax in softmax, no F.scaled_dot_product_attention
in attention, no nn.LayerNorm in LayerNorm ...).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from month1_transformer.model import MLP, GPTConfig

MONTH = "month1_transformer"


# Task 1.1 (5 points) ------------------------------------------------------------------------
def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along `dim`.

    Hint: subtract the max along `dim` first (softmax does not change, exp() cannot
    overflow). A row that is entirely -inf (fully masked) must come out as zeros, not NaN.
    """
    raise NotImplementedError("Task 1.1: softmax")


# Task 1.2 (10 points) -----------------------------------------------------------------------
def causal_mask(t_q: int, t_k: int, device: torch.device | None = None) -> Tensor:
    """(t_q, t_k) bool mask, True where query i may attend key j.

    The t_q queries are the LAST t_q of the t_k positions (that is how a KV cache works),
    so query i sees keys j <= i + (t_k - t_q). For t_q == t_k: the lower triangle.
    """
    raise NotImplementedError("Task 1.2: causal_mask")


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
) -> Tensor:
    """softmax(q k^T / sqrt(D)) v with masking.

    q: (..., T_q, D); k, v: (..., T_k, D); mask: bool broadcastable to (..., T_q, T_k),
    True = may attend. is_causal adds causal_mask(T_q, T_k). dropout_p: dropout on the
    attention weights (tests pass 0).
    Hint: masked scores become -inf before the softmax; use your softmax from Task 1.1.
    """
    raise NotImplementedError("Task 1.2: scaled_dot_product_attention")


# Task 1.3 (15 points) -----------------------------------------------------------------------
class MultiHeadAttention(nn.Module):
    """n_head heads of attention over d_model channels. The layers are given; write forward."""

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

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        is_causal: bool = False,
        rope: tuple[Tensor, Tensor] | None = None,
        cache=None,
        layer: int = 0,
    ) -> Tensor:
        """x: (B, T, C) -> (B, T, C).

        Steps: q, k, v = projections of x; reshape each (B, T, C) -> (B, H, T, D);
        if rope is given, q, k = apply_rope(q, *rope), apply_rope(k, *rope);
        attention per head (your Task 1.2 function); merge heads back to (B, T, C);
        out_proj. `cache` (a KV cache, for generation) may be ignored: tests pass None.
        """
        raise NotImplementedError("Task 1.3: MultiHeadAttention.forward")


# Task 1.4 (10 points) -----------------------------------------------------------------------
def sinusoidal_encoding(n_positions: int, d_model: int, base: float = 10000.0) -> Tensor:
    """(n_positions, d_model): PE[p, 2i] = sin(p / base^(2i/d_model)), PE[p, 2i+1] = cos(same angle)."""
    raise NotImplementedError("Task 1.4: sinusoidal_encoding")


def rope_cache(positions: Tensor, head_dim: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """(cos, sin), each (len(positions), head_dim).

    Angles: positions[:, None] * base^(-2i/head_dim) for i in 0 .. head_dim/2 - 1, then
    concatenated with themselves along the last dim (the "rotate half" pairing: channel j
    is paired with channel j + head_dim/2).
    """
    raise NotImplementedError("Task 1.4: rope_cache")


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x (..., T, head_dim): x * cos + rotate_half(x) * sin,
    where rotate_half((x1, x2)) = (-x2, x1) on the two halves of the last dim."""
    raise NotImplementedError("Task 1.4: apply_rope")


# Task 1.5 (10 points) -----------------------------------------------------------------------
class LayerNorm(nn.Module):
    """(x - mean) / sqrt(var + eps) * weight + bias over the last dim (biased variance)."""

    def __init__(self, d: int, eps: float = 1e-5, bias: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("Task 1.5: LayerNorm.forward")


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight over the last dim."""

    def __init__(self, d: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("Task 1.5: RMSNorm.forward")


# Task 1.6 (15 points) -----------------------------------------------------------------------
class Block(nn.Module):
    """Pre-norm transformer block built from your LayerNorm/RMSNorm and MultiHeadAttention."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        norm = (lambda: LayerNorm(cfg.n_embd, bias=cfg.bias)) if cfg.norm == "layernorm" else (
            lambda: RMSNorm(cfg.n_embd)
        )
        self.ln_1 = norm()
        self.attn = MultiHeadAttention(cfg.n_embd, cfg.n_head, cfg.bias, cfg.dropout)
        self.ln_2 = norm()
        self.mlp = MLP(cfg)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, rope=None, cache=None, layer: int = 0) -> Tensor:
        """x + attention(ln_1(x)) (causal; pass rope/cache/layer through), then x + mlp(ln_2(x)).
        Apply resid_dropout to the attention branch."""
        raise NotImplementedError("Task 1.6: Block.forward")


# Task 1.7 (15 points) -----------------------------------------------------------------------
def softmax_cross_entropy_forward_backward(logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """(mean cross-entropy loss, d loss / d logits) for logits (N, C) and targets (N,).

    Without autograd: loss = mean(logsumexp(logits) - logits[target]);
    dlogits = (softmax(logits) - onehot(targets)) / N. Keep it stable for huge logits.
    """
    raise NotImplementedError("Task 1.7: softmax_cross_entropy_forward_backward")


# Task 1.8 (10 points) -----------------------------------------------------------------------
def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch, grad_clip: float = 1.0,
               loss_fn=None) -> float:
    """One optimizer step on `batch`; returns the loss as a float.

    loss = loss_fn(model, batch) if loss_fn is given, else model(*batch)[1]
    (the model returns logits, loss). Then: zero the gradients, backward, clip the
    total gradient norm to grad_clip (if > 0; torch.nn.utils.clip_grad_norm_ is fine),
    optimizer step.
    """
    raise NotImplementedError("Task 1.8: train_step")
