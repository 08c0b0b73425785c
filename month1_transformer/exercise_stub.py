"""Month 1 graded exercises: your implementation.

Fill in every `raise NotImplementedError(...)`, then grade your work:

    pytest month1_transformer --impl my_work/month1_transformer.py            # all tasks
    pytest month1_transformer --impl my_work/month1_transformer.py -m m1_t1   # one task

Tests compare your code with the reference (month1_transformer/) and with PyTorch's own
implementations, with explicit tolerances. Shapes: B batch, H heads, T length, D head
width, C = H * D model width. You may use torch tensor operations, but not the
functions you are asked to write (no F.softmax in softmax, no F.scaled_dot_product_attention
in attention, no nn.LayerNorm in LayerNorm ...).

The classes subclass the reference ones: the constructor (the layers, their names, their
initialisation) is the reference's, so it cannot drift from it, and you write only the
methods that raise NotImplementedError. Each task is graded on its own: the modules a class
builds are the reference's (Block's ln_1, attn, ln_2, mlp are the reference norms, attention
and MLP, not your Task 1.3 and 1.5 classes). Inside a method you may call your functions
from other tasks, or the reference ones (say, scaled_dot_product_attention from
month1_transformer.attention) so that a bug elsewhere does not fail this task.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from month1_transformer.attention import MultiHeadAttention as ReferenceMultiHeadAttention
from month1_transformer.model import Block as ReferenceBlock
from month1_transformer.norm import LayerNorm as ReferenceLayerNorm
from month1_transformer.norm import RMSNorm as ReferenceRMSNorm

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
class MultiHeadAttention(ReferenceMultiHeadAttention):
    """n_head heads of attention over d_model channels. The layers are given; write forward.

    Given by the constructor, MultiHeadAttention(d_model, n_head, bias=True, dropout=0.0, fused=False):
    q_proj, k_proj, v_proj, out_proj (nn.Linear C -> C), n_head, head_dim (D = C / H),
    dropout (the attention-weight dropout probability; apply it only in training) and
    fused (asks for torch's fused kernel; you may ignore it).
    """

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
        if rope is given, q, k = apply_rope(q, *rope), apply_rope(k, *rope) (Task 1.4);
        attention per head with mask / is_causal (Task 1.2); merge heads back to (B, T, C);
        out_proj. `cache` (a KV cache for generation; tests pass None) and `layer` may be ignored.
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
class LayerNorm(ReferenceLayerNorm):
    """(x - mean) / sqrt(var + eps) * weight + bias over the last dim (biased variance).

    Given by the constructor, LayerNorm(d, eps=1e-5, bias=True): eps, weight (d,) and
    bias (d,), or None when bias=False.
    """

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., d) -> (..., d)."""
        raise NotImplementedError("Task 1.5: LayerNorm.forward")


class RMSNorm(ReferenceRMSNorm):
    """x / sqrt(mean(x^2) + eps) * weight over the last dim (no mean subtraction, no bias).

    Given by the constructor, RMSNorm(d, eps=1e-6): eps and weight (d,).
    """

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., d) -> (..., d)."""
        raise NotImplementedError("Task 1.5: RMSNorm.forward")


# Task 1.6 (15 points) -----------------------------------------------------------------------
class Block(ReferenceBlock):
    """Pre-norm transformer block. The modules are given; write forward.

    Given by the constructor, Block(cfg: GPTConfig): ln_1, ln_2 (the reference LayerNorm or
    RMSNorm, as cfg.norm says), attn (the reference MultiHeadAttention), mlp and
    resid_dropout. They are the reference's on purpose: this task grades the block's wiring
    alone, whatever the state of your Tasks 1.3 and 1.5.
    """

    def forward(self, x: Tensor, rope=None, cache=None, layer: int = 0) -> Tensor:
        """x: (B, T, C) -> (B, T, C).

        x + attention(ln_1(x)) (causal; pass rope/cache/layer through), then x + mlp(ln_2(x)).
        Apply resid_dropout to the attention branch.
        """
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
