"""The selective scan: sequential (graded m3_t2) and chunked parallel (graded m3_t3) forms,
against a plain double loop, against each other (values and gradients), against transformers'
reference implementation of mamba-ssm's semantics, and against mamba-ssm's CUDA kernel when present."""

import pytest
import torch
import torch.nn.functional as F

from month3_mamba import scan
from month3_mamba.scan import selective_scan

# float32 agreement between the sequential and chunked forms (documented in scan.py)
TOL = {"rtol": 1e-4, "atol": 1e-5}


def random_inputs(b=2, d=5, length=37, n=4, seed=0, decay=1.0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(b, d, length, generator=g)
    delta = F.softplus(torch.randn(b, d, length, generator=g))
    A = -torch.rand(d, n, generator=g) * 4 * decay - 0.1
    B = torch.randn(b, n, length, generator=g)
    C = torch.randn(b, n, length, generator=g)
    return u, delta, A, B, C


def naive_scan(u, delta, A, B, C, h0=None):
    """Scalar loops straight from the equations: the slowest, most obviously correct version."""
    b, d, length = u.shape
    n = A.size(1)
    y = torch.zeros(b, d, length)
    h = torch.zeros(b, d, n) if h0 is None else h0.clone()
    for i in range(b):
        for c in range(d):
            for t in range(length):
                h[i, c] = torch.exp(delta[i, c, t] * A[c]) * h[i, c] + delta[i, c, t] * B[i, :, t] * u[i, c, t]
                y[i, c, t] = (C[i, :, t] * h[i, c]).sum()
    return y, h


@pytest.mark.m3_t2
def test_discretize_shapes_and_values(impl):
    u, delta, A, B, _ = random_inputs()
    dA, dBu = impl.discretize(u, delta, A, B)
    assert dA.shape == dBu.shape == (37, 2, 5, 4)  # time-major
    torch.testing.assert_close(dA[7, 1, 3], torch.exp(delta[1, 3, 7] * A[3]))
    torch.testing.assert_close(dBu[7, 1, 3], delta[1, 3, 7] * B[1, :, 7] * u[1, 3, 7])


@pytest.mark.m3_t2
def test_sequential_scan_matches_the_equations(impl):
    u, delta, A, B, C = random_inputs(length=12)
    h0 = torch.randn(2, 5, 4)
    y_ref, h_ref = naive_scan(u, delta, A, B, C, h0)
    dA, dBu = impl.discretize(u, delta, A, B)
    y, h = impl.scan_sequential(dA, dBu, C.permute(2, 0, 1), h0)
    torch.testing.assert_close(y.permute(1, 2, 0), y_ref, **TOL)
    torch.testing.assert_close(h, h_ref, **TOL)
    # Without h0 the state starts at zero.
    y0, _ = impl.scan_sequential(dA, dBu, C.permute(2, 0, 1))
    torch.testing.assert_close(y0.permute(1, 2, 0), naive_scan(u, delta, A, B, C)[0], **TOL)


@pytest.mark.m3_t3
def test_associative_scan_is_the_recurrence(impl):
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(3, 23, generator=g), torch.randn(3, 23, generator=g)
    prod, h = impl.associative_scan(a, b, dim=1)
    state, expect_h, expect_p = torch.zeros(3), [], []
    for t in range(23):
        state = a[:, t] * state + b[:, t]
        expect_h.append(state)
        expect_p.append(a[:, : t + 1].prod(1))
    torch.testing.assert_close(h, torch.stack(expect_h, 1), **TOL)
    torch.testing.assert_close(prod, torch.stack(expect_p, 1), **TOL)


@pytest.mark.m3_t3
@pytest.mark.parametrize("length,chunk", [(37, 8), (64, 16), (5, 32), (50, 1)])
def test_chunked_scan_equals_sequential(impl, length, chunk):
    u, delta, A, B, C = random_inputs(length=length)
    dA, dBu = scan.discretize(u, delta, A, B)
    C = C.permute(2, 0, 1)
    h0 = torch.randn(2, 5, 4)
    y_ref, h_ref = scan.scan_sequential(dA, dBu, C, h0)
    y, h = impl.scan_chunked(dA, dBu, C, h0, chunk_size=chunk)
    torch.testing.assert_close(y, y_ref, **TOL)
    torch.testing.assert_close(h, h_ref, **TOL)


@pytest.mark.m3_t3
def test_chunked_scan_gradients_and_strong_decay(impl):
    """Autograd flows through it (no in-place ops) with the same gradients, and a decay that
    underflows to 0 gives finite numbers (the log-space exp(-cumsum) trick gives NaN here)."""
    u, delta, A, B, C = random_inputs(length=40, decay=50.0)  # exp(delta A) down to ~1e-80 -> 0
    grads = []
    for fn in (scan.scan_sequential, lambda *a: impl.scan_chunked(*a, chunk_size=16)):
        leaf = delta.clone().requires_grad_()
        dA, dBu = scan.discretize(u, leaf, A, B)
        y, h = fn(dA, dBu, C.permute(2, 0, 1))
        (y.square().sum() + h.sum()).backward()
        assert torch.isfinite(y).all()
        grads.append(leaf.grad)
    torch.testing.assert_close(grads[1], grads[0], **TOL)


@pytest.mark.parametrize("mode", ["sequential", "chunked"])
def test_selective_scan_matches_transformers_reference(mode):
    """transformers' pure-PyTorch fallback implements mamba-ssm's selective_scan_fn contract."""
    modeling = pytest.importorskip("transformers.models.mamba.modeling_mamba")
    u, delta, A, B, C = random_inputs(length=30)
    g = torch.Generator().manual_seed(5)
    D, z, bias = torch.randn(5, generator=g), torch.randn(2, 5, 30, generator=g), torch.randn(5, generator=g)
    theirs, their_state = modeling.mamba_selective_scan(
        u, delta, A, B, C, D, z, delta_bias=bias, delta_softplus=True, return_last_state=True
    )
    ours, state = selective_scan(u, delta, A, B, C, D, z, bias, True, return_last_state=True, mode=mode)
    torch.testing.assert_close(ours, theirs, **TOL)
    torch.testing.assert_close(state, their_state, **TOL)


def test_initial_state_continues_a_split_sequence():
    u, delta, A, B, C = random_inputs(length=40)
    full = selective_scan(u, delta, A, B, C, mode="chunked", chunk_size=8)
    first, state = selective_scan(u[..., :17], delta[..., :17], A, B[..., :17], C[..., :17], return_last_state=True)
    second = selective_scan(u[..., 17:], delta[..., 17:], A, B[..., 17:], C[..., 17:], initial_state=state)
    torch.testing.assert_close(torch.cat([first, second], -1), full, **TOL)


def test_mamba_ssm_kernel_agrees_with_ours():
    """Runs where the [gpu] extra is installed (a CUDA box); skipped on CPU."""
    if not scan.mamba_ssm_available():
        pytest.skip("mamba-ssm's CUDA kernels are not importable here")
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

    u, delta, A, B, C = (t.cuda() for t in random_inputs(length=300, d=16, n=8))
    D, z = torch.randn(16, device="cuda"), torch.randn(2, 16, 300, device="cuda")
    theirs = selective_scan_fn(u, delta, A, B, C, D, z, None, True)
    for mode in ("sequential", "chunked"):
        ours = selective_scan(u, delta, A, B, C, D, z, None, True, mode=mode)
        torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-4)
