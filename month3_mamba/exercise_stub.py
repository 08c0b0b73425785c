"""Month 3 graded exercises: your implementation.

Fill in every `raise NotImplementedError(...)`, then grade your work:

    python -m shared.exercises start month3
    pytest month3_mamba --impl my_work/month3_mamba.py            # all tasks
    pytest month3_mamba --impl my_work/month3_mamba.py -m m3_t3   # one task

Tests compare your code with the reference (month3_mamba/), with PyTorch's conv1d, with a
brute-force ODE integration and with transformers' Mamba, with explicit tolerances (float32:
rtol 1e-4, atol 1e-5). Shapes: b batch, d channels (d_inner), l length, n state size.
The scans work time-major: dA, dBu (l, b, d, n), C (l, b, n), y (l, b, d).
No in-place updates of tensors that need gradients (h[t] = ... breaks autograd): build lists, stack.

MambaMixer subclasses the reference mixer: its constructor (the parameters, Hugging Face's
names, Mamba's initialisation of dt_proj) is the reference's, so it cannot drift from it, and
you write only forward. Each task is graded on its own: in forward you may call your functions
from other tasks or the reference ones (month3_mamba.model.causal_depthwise_conv1d, and
selective_scan, imported below), so that a bug elsewhere does not fail this task.
"""

from __future__ import annotations

import torch  # noqa: F401  (you will want it)
import torch.nn.functional as F  # noqa: F401  (you will want it)
from torch import Tensor, nn

from month3_mamba.model import MambaLayerState
from month3_mamba.model import MambaMixer as ReferenceMambaMixer
from month3_mamba.scan import selective_scan  # noqa: F401  (Task 3.5 may use it, or your own scans)

MONTH = "month3_mamba"


# Task 3.1 (10 points) -----------------------------------------------------------------------
def zoh_discretize(A: Tensor, B: Tensor, delta: float | Tensor) -> tuple[Tensor, Tensor]:
    """Zero-order-hold discretisation of x' = A x + B u with step delta.

    A: (N, N); B: (N,) or (N, M). Returns (Abar, Bbar): Abar = exp(delta A),
    Bbar = A^{-1} (exp(delta A) - I) B, with Bbar shaped like B.
    Hint: A may be singular (A = 0 must give Abar = I, Bbar = delta B). The matrix exponential
    (torch.linalg.matrix_exp) of the block matrix [[A, B], [0, 0]] * delta is [[Abar, Bbar], [0, I]].
    """
    raise NotImplementedError("Task 3.1: zoh_discretize")


# Task 3.2 (10 points) -----------------------------------------------------------------------
def discretize(u: Tensor, delta: Tensor, A: Tensor, B: Tensor) -> tuple[Tensor, Tensor]:
    """Mamba's discretisation: dA = exp(delta A), dBu = delta * B * u, both time-major (l, b, d, n).

    u, delta: (b, d, l); A: (d, n); B: (b, n, l).
    dA[t, i, c, k] = exp(delta[i, c, t] * A[c, k]); dBu[t, i, c, k] = delta[i, c, t] * B[i, k, t] * u[i, c, t].
    """
    raise NotImplementedError("Task 3.2: discretize")


def scan_sequential(dA: Tensor, dBu: Tensor, C: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """h_t = dA_t * h_{t-1} + dBu_t (h_{-1} = h0, or zeros); y_t = sum over n of C_t[n] * h_t[n].

    dA, dBu: (l, b, d, n); C: (l, b, n); h0: (b, d, n). Returns (y (l, b, d), h_last (b, d, n)).
    Hint: loop over dA.unbind(0); collect the states in a list and torch.stack them.
    """
    raise NotImplementedError("Task 3.2: scan_sequential")


# Task 3.3 (15 points) -----------------------------------------------------------------------
def associative_scan(a: Tensor, b: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """Inclusive scan of h_t = a_t h_{t-1} + b_t (h_{-1} = 0) along `dim` in log2(L) sweeps.

    Returns (prod_{s<=t} a_s, h_t), both shaped like a. Each (a_t, b_t) is an affine map;
    applying (a1, b1) then (a2, b2) is (a1 a2, a2 b1 + b2). Sweep k (offset 1, 2, 4, ...)
    combines element t with element t - offset (elements with t < offset combine with the
    identity (1, 0)). Build shifted copies with torch.cat / narrow; never write in place.
    """
    raise NotImplementedError("Task 3.3: associative_scan")


def scan_chunked(
    dA: Tensor, dBu: Tensor, C: Tensor, h0: Tensor | None = None, chunk_size: int = 32
) -> tuple[Tensor, Tensor]:
    """Same contract and result as scan_sequential, computed in chunks of `chunk_size` steps.

    Pad the length to a multiple of chunk_size with identity steps (dA = 1, dBu = 0); reshape
    to (chunks, chunk_size, b, d, n); associative_scan along dim 1 gives, per chunk, the
    cumulative decay A_cum and the state x started from zero. Then, chunk by chunk, the true
    states are A_cum * h_in + x, and h_in for the next chunk is the last of them.
    """
    raise NotImplementedError("Task 3.3: scan_chunked")


# Task 3.4 (10 points) -----------------------------------------------------------------------
def causal_depthwise_conv1d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, state: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Each channel's own k-tap causal filter: y[:, c, t] = bias[c] + sum_j weight[c, j] * x[:, c, t - (k-1) + j].

    x: (b, d, l); weight: (d, 1, k) or (d, k); state: (b, d, k - 1), the inputs just before x
    (zeros when None). Returns (y (b, d, l), the new state: the last k - 1 inputs seen).
    Hint: concatenate state and x, then F.conv1d(..., groups=d) with no padding - or a sum of
    k shifted products. Chunks shorter than k must work too.
    """
    raise NotImplementedError("Task 3.4: causal_depthwise_conv1d")


# Task 3.5 (15 points) -----------------------------------------------------------------------
class MambaMixer(ReferenceMambaMixer):
    """The selective SSM layer. The parameters are given (Hugging Face's names); write forward.

    Given by the constructor, MambaMixer(cfg: MambaConfig): cfg (d_inner, d_state n, rank,
    d_conv, scan, chunk_size), in_proj (d_model -> 2 d_inner), conv1d (weight (d_inner, 1, d_conv),
    bias), x_proj (d_inner -> rank + 2 n), dt_proj (rank -> d_inner), A_log (d_inner, n), D (d_inner,),
    out_proj (d_inner -> d_model), and init_state(batch_size) for a zero MambaLayerState.
    """

    def forward(self, x: Tensor, state: MambaLayerState | None = None) -> Tensor:
        """x: (b, l, d_model) -> (b, l, d_model).

        1. in_proj, split the channels into xs and z (each (b, l, d_inner); work on (b, d_inner, l)).
        2. xs = silu(causal_depthwise_conv1d(xs, conv1d.weight, conv1d.bias, state.conv if state)).
        3. x_proj(xs) -> dt (rank), B (n), C (n); delta = softplus(dt @ dt_proj.weight.T + dt_proj.bias).
        4. The selective scan with A = -exp(A_log), the skip D * xs, gated by silu(z); start from
           state.ssm if a state is given. Your Task 3.2/3.3 scans do the recurrence;
           selective_scan(u, delta, A, B, C, D, z, initial_state=..., return_last_state=True)
           does all of step 4 on (b, d_inner, l) / (b, n, l) inputs.
        5. out_proj. If a state was given, store the new conv and ssm states in it (state.conv = ...).
        """
        raise NotImplementedError("Task 3.5: MambaMixer.forward")


# Task 3.6 (15 points) -----------------------------------------------------------------------
def mamba_step(mixer: nn.Module, x: Tensor, state: MambaLayerState) -> Tensor:
    """One token through a mixer as a recurrence: x (b, d_model) -> (b, d_model); update `state`.

    Uses the mixer's parameters (in_proj, conv1d, x_proj, dt_proj, A_log, D, out_proj).
    state.conv (b, d_inner, k - 1) holds the previous conv inputs: the window is those plus
    the new input; state.ssm (b, d_inner, n) is h. One step: h = exp(delta A) h + delta B x,
    y = C . h + D x, times silu(z). The result must equal mixer.forward over the whole sequence.
    """
    raise NotImplementedError("Task 3.6: mamba_step")


# Task 3.7 (10 points) -----------------------------------------------------------------------
def wkv_recurrent(
    w: Tensor, u: Tensor, k: Tensor, v: Tensor, state: tuple[Tensor, Tensor, Tensor] | None = None
) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    """RWKV-4's WKV operator as an RNN. w (decay, > 0), u (bonus): (d,); k, v: (b, t, d).

    wkv_t = (sum_{i<t} e^{-(t-1-i) w + k_i} v_i + e^{u + k_t} v_t) / (sum_{i<t} e^{-(t-1-i) w + k_i} + e^{u + k_t})

    The state (num, den, p), each (b, d), means num * e^p = sum_{i<t} e^{-(t-1-i) w + k_i} v_i and
    den * e^p = the same without v; None means nothing seen yet: (0, 0, -1e38).
    Returns (wkv (b, t, d), the state after the last token).
    Hint: never compute e^{k} directly (k = 100 overflows float32). For the output use
    q = max(p, u + k_t) and the factors e^{p - q}, e^{u + k_t - q}; to move the state on,
    q = max(p - w, k_t), num = e^{p - w - q} num + e^{k_t - q} v_t, likewise den, and p = q.
    """
    raise NotImplementedError("Task 3.7: wkv_recurrent")
