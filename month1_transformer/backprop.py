"""Autograd and backprop, made visible: hand-written backward passes of a transformer's pieces.

Every layer follows one pattern:

    out, cache = layer_forward(inputs...)    # cache keeps what the backward needs
    grads = layer_backward(d_out, cache)     # one gradient per input, in input order

`dX` always means dL/dX for a scalar loss L, and has X's shape. Everything runs under
`torch.no_grad()`: the gradients here come from the formulas, not from autograd, and the
tests check them against `torch.autograd` on the same inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Cache = tuple[torch.Tensor, ...]


# -- linear --------------------------------------------------------------------------------


@torch.no_grad()
def linear_forward(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, Cache]:
    """y = x @ w.T + b, with x (..., in), w (out, in), b (out,); same as F.linear."""
    return x @ w.T + b, (x, w)


@torch.no_grad()
def linear_backward(dy: torch.Tensor, cache: Cache) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dx = dy @ w;  dw = dy^T x  and  db = sum(dy), summed over every leading (row) dim.

    w and b are shared by all rows of x, so their gradients add up the rows' contributions.
    """
    x, w = cache
    dy_rows = dy.reshape(-1, w.shape[0])
    x_rows = x.reshape(-1, w.shape[1])
    return dy @ w, dy_rows.T @ x_rows, dy_rows.sum(0)


# -- softmax + cross-entropy -----------------------------------------------------------------


@torch.no_grad()
def softmax_cross_entropy_forward_backward(
    logits: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy of logits (N, C) against class ids targets (N,), and dL/dlogits.

    loss = mean_i( logsumexp(z_i) - z_i[t_i] );   dlogits = (softmax(z) - onehot(t)) / N.

    Subtracting each row's max first leaves softmax unchanged (it cancels in the ratio)
    but keeps exp() from overflowing on large logits.
    """
    n = logits.shape[0]
    rows = torch.arange(n, device=logits.device)
    shifted = logits - logits.max(dim=1, keepdim=True).values
    log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
    loss = -log_probs[rows, targets].mean()
    dlogits = log_probs.exp()
    dlogits[rows, targets] -= 1.0
    return loss, dlogits / n


# -- layer norm ------------------------------------------------------------------------------


@torch.no_grad()
def layernorm_forward(
    x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5
) -> tuple[torch.Tensor, Cache]:
    """y = xhat * gamma + beta with xhat = (x - mean) / sqrt(var + eps) over the last dim.

    var is the biased (divide-by-N) variance, as in F.layer_norm.
    """
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True, unbiased=False)
    rstd = (var + eps).rsqrt()
    xhat = (x - mean) * rstd
    return xhat * gamma + beta, (xhat, rstd, gamma)


@torch.no_grad()
def layernorm_backward(dy: torch.Tensor, cache: Cache) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dgamma = sum(dy * xhat), dbeta = sum(dy) over leading dims; with dxhat = dy * gamma,

    dx = (1/N) * rstd * (N * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)), sums over the last dim.

    The two subtracted terms are the paths through the mean and through the variance:
    every x_j moves every xhat_i of its row.
    """
    xhat, rstd, gamma = cache
    n = xhat.shape[-1]
    dxhat = dy * gamma
    dx = (rstd / n) * (
        n * dxhat - dxhat.sum(dim=-1, keepdim=True) - xhat * (dxhat * xhat).sum(dim=-1, keepdim=True)
    )
    dgamma = (dy * xhat).reshape(-1, n).sum(0)
    dbeta = dy.reshape(-1, n).sum(0)
    return dx, dgamma, dbeta


# -- one attention head ----------------------------------------------------------------------


@torch.no_grad()
def attention_head_forward(
    x: torch.Tensor, wq: torch.Tensor, wk: torch.Tensor, wv: torch.Tensor, causal: bool = True
) -> tuple[torch.Tensor, Cache]:
    """One head: x (T, C), wq/wk/wv (C, H); out = softmax(q k^T / sqrt(H), masked) @ v, (T, H)."""
    q, k, v = x @ wq, x @ wk, x @ wv
    scores = (q @ k.T) / math.sqrt(q.shape[-1])
    if causal:  # token t may only look at tokens <= t
        t = x.shape[0]
        future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
    att = scores.softmax(dim=-1)
    return att @ v, (x, wq, wk, wv, q, k, v, att)


@torch.no_grad()
def attention_head_backward(
    dout: torch.Tensor, cache: Cache
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backward of attention_head_forward, read from the output back to x:

    out = P v:           dP = dout v^T,  dv = P^T dout
    P = softmax(S):      dS = P * (dP - sum(dP * P, -1))
    S = q k^T / sqrt(H): dq = dS k / sqrt(H),  dk = dS^T q / sqrt(H)
    q = x wq (k, v too): dwq = x^T dq,  dx = dq wq^T + dk wk^T + dv wv^T

    The causal mask needs no special case: masked entries have P = 0, so their dS is 0.
    """
    x, wq, wk, wv, q, k, v, att = cache
    scale = 1.0 / math.sqrt(q.shape[-1])
    datt = dout @ v.T
    dv = att.T @ dout
    dscores = att * (datt - (datt * att).sum(dim=-1, keepdim=True))
    dq = dscores @ k * scale
    dk = dscores.T @ q * scale
    dx = dq @ wq.T + dk @ wk.T + dv @ wv.T
    return dx, x.T @ dq, x.T @ dk, x.T @ dv


# -- checking gradients ----------------------------------------------------------------------


@torch.no_grad()
def compare(name: str, manual: torch.Tensor, reference: torch.Tensor, atol: float, rtol: float) -> float:
    """Max |manual - reference|; raises AssertionError, saying where, if any entry is off by
    more than atol + rtol * |reference| (the torch.allclose rule)."""
    if manual.shape != reference.shape:
        raise AssertionError(f"{name}: shape {tuple(manual.shape)} != reference {tuple(reference.shape)}")
    diff = (manual - reference).abs()
    max_diff = diff.max().item() if diff.numel() else 0.0
    excess = diff - (atol + rtol * reference.abs())
    if diff.isnan().any() or (excess > 0).any():
        worst = excess.nan_to_num(nan=math.inf).argmax()
        where = tuple(i.item() for i in torch.unravel_index(worst, diff.shape))
        raise AssertionError(
            f"{name}: max abs diff {max_diff:.3e} exceeds atol={atol:g} + rtol={rtol:g}*|ref|; "
            f"worst at {where}: manual {manual[where].item():.6g} vs reference {reference[where].item():.6g}"
        )
    return max_diff


@torch.no_grad()
def numerical_gradient(
    f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """df/dx of a scalar function by central differences: (f(x + eps e_i) - f(x - eps e_i)) / (2 eps).

    Truncation error is O(eps^2) and rounding error O(machine eps / eps): with float64 and
    eps = 1e-6 both are ~1e-10, with float32 the rounding error alone is ~0.1, hence float64 only.
    Costs two calls of f per entry of x, so keep x small.
    """
    if x.dtype != torch.float64:
        raise TypeError(f"numerical_gradient needs float64 input (got {x.dtype}): float32 is too coarse")
    x = x.detach().clone(memory_format=torch.contiguous_format)
    grad = torch.empty_like(x)
    flat, grad_flat = x.view(-1), grad.view(-1)
    for i in range(flat.numel()):
        original = flat[i].item()
        flat[i] = original + eps
        f_plus = float(f(x))
        flat[i] = original - eps
        f_minus = float(f(x))
        flat[i] = original
        grad_flat[i] = (f_plus - f_minus) / (2 * eps)
    return grad
