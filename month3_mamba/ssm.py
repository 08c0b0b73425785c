"""Continuous state-space models, discretised: the S4 view that Mamba starts from.

A continuous linear SSM maps an input signal u(t) to y(t) through a state x(t) in R^N:

    x'(t) = A x(t) + B u(t),      y(t) = C x(t)

Sampled with a step `delta` under a zero-order hold (u held constant over each step):

    x_k = Abar x_{k-1} + Bbar u_k,   y_k = C x_k,
    Abar = exp(delta A),   Bbar = A^{-1} (exp(delta A) - I) B.

When A, B, C and delta do not depend on the input (linear time-invariant, LTI), unrolling
the recurrence gives y_k = sum_j K_j u_{k-j} with K_j = C Abar^j Bbar: a causal convolution
that can be computed for the whole sequence at once (with an FFT) - the S4 training trick.

Mamba makes delta, B and C functions of the input ("selective"). Then the weight of u_s in
y_t is C_t (Abar_t ... Abar_{s+1}) Bbar_s: it depends on t and s separately, not only on
t - s, and on the input itself. `selective_matrix` below is not Toeplitz and differs from
input to input, so the map is no longer linear (superposition fails) and there is no kernel
to convolve with. What survives is the recurrence, computed with a scan (scan.py).

Shapes here are single-input single-output, for teaching: u is (..., L); A (N, N); B, C (N,).
"""

from __future__ import annotations

import torch
from torch import Tensor


def zoh_discretize(A: Tensor, B: Tensor, delta: float | Tensor) -> tuple[Tensor, Tensor]:
    """Zero-order-hold discretisation of x' = A x + B u with step delta.

    A: (N, N), B: (N,) or (N, M). Returns (Abar, Bbar) with Abar = exp(delta A) and
    Bbar = A^{-1}(exp(delta A) - I) B = (integral_0^delta exp(s A) ds) B.

    Why the block matrix: exp([[A, B], [0, 0]] * delta) = [[Abar, Bbar], [0, I]], which is
    exact even when A is singular (no A^{-1} is ever formed)."""
    vector = B.dim() == 1
    B2 = B[:, None] if vector else B
    n, m = B2.shape
    block = torch.zeros(n + m, n + m, dtype=A.dtype, device=A.device)
    block[:n, :n] = A
    block[:n, n:] = B2
    expm = torch.linalg.matrix_exp(block * delta)
    Abar, Bbar = expm[:n, :n], expm[:n, n:]
    return Abar, (Bbar[:, 0] if vector else Bbar)


def zoh_discretize_diagonal(A: Tensor, B: Tensor, delta: Tensor) -> tuple[Tensor, Tensor]:
    """ZOH for a diagonal A (S4D, Mamba), elementwise: Abar = exp(delta A),
    Bbar = (exp(delta A) - 1) / A * B. Mamba itself simplifies Bbar to delta * B (Euler),
    which agrees to first order in delta; see scan.discretize."""
    dA = delta * A
    return torch.exp(dA), torch.expm1(dA) / A * B


def ssm_recurrence(Abar: Tensor, Bbar: Tensor, C: Tensor, u: Tensor, x0: Tensor | None = None) -> Tensor:
    """y_k = C x_k with x_k = Abar x_{k-1} + Bbar u_k, one step at a time. u: (..., L) -> y: (..., L)."""
    x = torch.zeros(*u.shape[:-1], Abar.size(0), dtype=u.dtype, device=u.device) if x0 is None else x0
    ys = []
    for k in range(u.size(-1)):
        x = x @ Abar.T + Bbar * u[..., k, None]
        ys.append(x @ C)
    return torch.stack(ys, dim=-1)


def ssm_kernel(Abar: Tensor, Bbar: Tensor, C: Tensor, length: int) -> Tensor:
    """The LTI SSM's convolution kernel K_j = C Abar^j Bbar, j = 0 .. length-1."""
    ks, v = [], Bbar
    for _ in range(length):
        ks.append(C @ v)
        v = Abar @ v
    return torch.stack(ks)


def causal_convolution(u: Tensor, K: Tensor) -> Tensor:
    """y_k = sum_{j<=k} K_j u_{k-j} for every k at once, by FFT (O(L log L), S4's trick).

    Zero-padding to 2L turns the FFT's circular convolution into a linear one."""
    length = u.size(-1)
    n = 2 * length
    y = torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(K, n=n), n=n)
    return y[..., :length]


def selective_matrix(delta: Tensor, A: Tensor, B: Tensor, C: Tensor) -> Tensor:
    """The (L, L) matrix M with y = M u for a selective (time-varying) diagonal SSM.

    delta: (L,), A: (N,) diagonal (negative), B, C: (L, N); Mamba's discretisation
    Abar_t = exp(delta_t A), Bbar_t = delta_t B_t. M[t, s] = sum_n C[t, n]
    exp(A_n (delta_{s+1} + ... + delta_t)) delta_s B[s, n] for s <= t, else 0.
    For an LTI system M is Toeplitz (M[t, s] depends only on t - s) - a convolution."""
    cum = torch.cumsum(delta, dim=0)
    gap = cum[:, None] - cum[None, :]  # delta_{s+1} + ... + delta_t, (t, s)
    causal = torch.ones_like(gap, dtype=torch.bool).tril()
    # Mask before exp: above the diagonal gap < 0 and exp(A * gap) would overflow.
    decay = torch.exp(A[None, None, :] * gap.masked_fill(~causal, 0.0)[..., None])
    M = torch.einsum("tn,tsn,s,sn->ts", C, decay, delta, B)
    return M * causal


def toeplitz_defect(M: Tensor) -> float:
    """How far a lower-triangular matrix is from Toeplitz: the largest spread along a diagonal.
    0 for a convolution (LTI); clearly > 0 for a selective SSM."""
    spread = 0.0
    for offset in range(M.size(0)):
        diagonal = torch.diagonal(M, -offset)
        spread = max(spread, float(diagonal.max() - diagonal.min()))
    return spread
