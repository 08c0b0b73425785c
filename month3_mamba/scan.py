"""The selective scan (S6): Mamba's recurrence, sequential and parallel, in pure PyTorch.

Per channel d and state index n, with input-dependent delta_t, B_t, C_t (Mamba's discretisation):

    h_t = exp(delta_t A) * h_{t-1} + delta_t B_t u_t        (dA_t = exp(delta_t A), dBu_t = delta_t B_t u_t)
    y_t = C_t . h_t + D u_t,  then gated: y_t * silu(z_t)

Shapes follow mamba-ssm's `selective_scan_fn`: u, delta, z: (b, d, l); A: (d, n);
B, C: (b, n, l); D, delta_bias: (d,). The scans work time-major: dA, dBu (l, b, d, n), C (l, b, n).

Two ways to run h_t = a_t h_{t-1} + b_t:
- `scan_sequential`: the loop itself; the reference.
- `scan_chunked`: the recurrence is a composition of affine maps, and composing
  (a1, b1) then (a2, b2) gives (a1 a2, a2 b1 + b2), which is associative - so it can be
  scanned in log2(chunk) parallel sweeps (Hillis-Steele, `associative_scan`). The sequence
  is cut into chunks scanned in parallel; only the chunk-boundary states are carried
  sequentially. Decays are multiplied (values in (0, 1]) inside short chunks: no
  exp(-cumsum) that overflows under strong decay, and every op is out of place so autograd works.

Tolerance: in float32 the two agree to about 1e-5 relative (tests use rtol 1e-4, atol 1e-5).
Speed: on one CPU thread the plain loop is the fastest (it does the least work; the chunked
form does log2(chunk) times more) - see benchmarks/month3_scan.py. The chunked form pays off
where many cores run each sweep in parallel, and on a GPU mamba-ssm's fused kernel does both.
"""

from __future__ import annotations

import importlib.util

import torch
import torch.nn.functional as F
from torch import Tensor

from month3_mamba import fused_scan

SCAN_MODES = ("sequential", "chunked", "fused", "cuda")


def discretize(u: Tensor, delta: Tensor, A: Tensor, B: Tensor) -> tuple[Tensor, Tensor]:
    """dA = exp(delta A) and dBu = delta B u, both time-major (l, b, d, n).

    u, delta: (b, d, l); A: (d, n); B: (b, n, l). Time-major because each scan step then
    reads one contiguous slice (on one CPU thread the loop ran about 1.5x faster than with (b, d, l, n))."""
    dA = torch.exp(delta.permute(2, 0, 1)[..., None] * A)
    dBu = (delta * u).permute(2, 0, 1)[..., None] * B.permute(2, 0, 1)[:, :, None, :]
    return dA, dBu


def scan_sequential(dA: Tensor, dBu: Tensor, C: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """h_t = dA_t h_{t-1} + dBu_t;  y_t = sum_n C_t[n] h_t[n].

    dA, dBu: (l, b, d, n); C: (l, b, n); h0: (b, d, n) or None (zeros).
    Returns (y (l, b, d), h_last (b, d, n))."""
    h = dA.new_zeros(dA.shape[1:]) if h0 is None else h0
    hs = []
    for a_t, b_t in zip(dA.unbind(0), dBu.unbind(0)):  # unbind, not dA[t]: its backward is one stack
        h = a_t * h + b_t
        hs.append(h)
    y = torch.einsum("lbdn,lbn->lbd", torch.stack(hs), C)
    return y, h


def associative_scan(a: Tensor, b: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """Inclusive scan of h_t = a_t h_{t-1} + b_t (h_{-1} = 0) along `dim`, in log2(L) sweeps.

    Returns (prod_{s<=t} a_s, h_t). Sweep k combines each element with the one 2^k steps
    earlier (Hillis-Steele); positions with nothing that far back combine with the identity (1, 0).
    Every sweep is a handful of whole-tensor ops, independent across t: the form parallel hardware likes."""
    length = a.size(dim)
    offset = 1
    while offset < length:
        a_prev = torch.cat([torch.ones_like(a.narrow(dim, 0, offset)), a.narrow(dim, 0, length - offset)], dim)
        b_prev = torch.cat([torch.zeros_like(b.narrow(dim, 0, offset)), b.narrow(dim, 0, length - offset)], dim)
        b = a * b_prev + b
        a = a * a_prev
        offset *= 2
    return a, b


def scan_chunked(
    dA: Tensor, dBu: Tensor, C: Tensor, h0: Tensor | None = None, chunk_size: int = 32
) -> tuple[Tensor, Tensor]:
    """Same contract and result as scan_sequential: parallel inside chunks (associative_scan),
    sequential only across the l / chunk_size chunk boundaries."""
    length, b, d, n = dA.shape
    pad = (-length) % chunk_size
    if pad:  # identity steps (a = 1, b = 0) leave the state unchanged
        dA = torch.cat([dA, dA.new_ones(pad, b, d, n)])
        dBu = torch.cat([dBu, dBu.new_zeros(pad, b, d, n)])
    chunks = (length + pad) // chunk_size
    a, x = associative_scan(dA.reshape(chunks, chunk_size, b, d, n), dBu.reshape(chunks, chunk_size, b, d, n), 1)
    h = dA.new_zeros(b, d, n) if h0 is None else h0
    states = []
    for c in range(chunks):  # the state entering chunk c, decayed through it, plus the chunk's own part
        hc = a[c] * h + x[c]
        states.append(hc)
        h = hc[-1]
    hs = torch.cat(states)[:length]
    return torch.einsum("lbdn,lbn->lbd", hs, C), hs[-1]


def mamba_ssm_available() -> bool:
    """True when the CUDA kernels of the [gpu] extra are importable (never on a CPU-only box)."""
    if importlib.util.find_spec("mamba_ssm") is None:
        return False
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn  # noqa: F401
    except (ImportError, OSError):
        return False
    return torch.cuda.is_available()


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    initial_state: Tensor | None = None,
    return_last_state: bool = False,
    mode: str = "sequential",
    chunk_size: int = 32,
) -> Tensor | tuple[Tensor, Tensor]:
    """mamba-ssm's `selective_scan_fn` contract, plus `initial_state` (b, d, n) for streaming.

    mode: 'sequential' (the loop; the fastest pure-PyTorch form on CPU), 'chunked' (the parallel form),
    'fused' (the same loop in C++, forward and backward: fused_scan.py; float32 on CPU, else 'sequential'),
    or 'cuda' (mamba-ssm's kernel on a GPU; it cannot start from a state, so streaming chunks and
    CPU tensors fall back to 'chunked')."""
    if mode not in SCAN_MODES:
        raise ValueError(f"mode must be one of {SCAN_MODES}, got {mode!r}")
    if mode == "cuda" and initial_state is None and mamba_ssm_available() and u.is_cuda:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

        return selective_scan_fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    dtype = u.dtype
    work = torch.promote_types(dtype, torch.float32)  # half precision in, float32 arithmetic (as mamba-ssm)
    u, delta, A, B, C = (t.to(work) for t in (u, delta, A, B, C))
    if delta_bias is not None:
        delta = delta + delta_bias.to(work)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    if mode == "fused" and not u.is_cuda and work == torch.float32 and fused_scan.available():
        h0 = None if initial_state is None else initial_state.to(work)
        y, last = fused_scan.fused_scan(u, delta, A, B, C, h0)
    else:
        dA, dBu = discretize(u, delta, A, B)
        C = C.permute(2, 0, 1)
        if mode in ("chunked", "cuda"):
            y, last = scan_chunked(dA, dBu, C, initial_state, chunk_size)
        else:
            y, last = scan_sequential(dA, dBu, C, initial_state)
        y = y.permute(1, 2, 0)
    if D is not None:
        y = y + u * D.to(work)[:, None]
    if z is not None:
        y = y * F.silu(z.to(work))
    y = y.to(dtype)
    return (y, last) if return_last_state else y
