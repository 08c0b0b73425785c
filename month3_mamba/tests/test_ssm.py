"""SSM foundations: ZOH discretisation (graded m3_t1), recurrence = convolution for LTI systems,
and why a selective (input-dependent) SSM is no longer a convolution."""

import pytest
import torch

from month3_mamba.scan import selective_scan
from month3_mamba.ssm import (
    causal_convolution,
    selective_matrix,
    ssm_kernel,
    ssm_recurrence,
    toeplitz_defect,
    zoh_discretize,
    zoh_discretize_diagonal,
)


def random_stable_system(n: int, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g, dtype=dtype) / n**0.5 - 1.5 * torch.eye(n, dtype=dtype)
    B = torch.randn(n, generator=g, dtype=dtype)
    C = torch.randn(n, generator=g, dtype=dtype)
    return A, B, C


def rk4_hold(A, B, delta, steps=2000):
    """Integrate x' = A x + B u from x(0) = 0 with u = 1 held, and x' = A x from x(0) = I: the
    columns of Bbar and Abar that ZOH promises, computed by brute force."""
    def f(x, u):
        return x @ A.T + u * B

    h = delta / steps
    x_b, x_a = torch.zeros_like(B), torch.eye(A.size(0), dtype=A.dtype)
    for _ in range(steps):
        k1, k2 = f(x_b, 1), f(x_b + h / 2 * f(x_b, 1), 1)
        k3 = f(x_b + h / 2 * k2, 1)
        k4 = f(x_b + h * k3, 1)
        x_b = x_b + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        a1 = x_a @ A.T
        a2 = (x_a + h / 2 * a1) @ A.T
        a3 = (x_a + h / 2 * a2) @ A.T
        a4 = (x_a + h * a3) @ A.T
        x_a = x_a + h / 6 * (a1 + 2 * a2 + 2 * a3 + a4)
    return x_a.T, x_b


@pytest.mark.m3_t1
def test_zoh_matches_the_integrated_ode(impl):
    A, B, _ = random_stable_system(4)
    Abar, Bbar = impl.zoh_discretize(A, B, 0.3)
    Abar_ode, Bbar_ode = rk4_hold(A, B, 0.3)
    torch.testing.assert_close(Abar, Abar_ode, atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(Bbar, Bbar_ode, atol=1e-9, rtol=1e-7)


@pytest.mark.m3_t1
def test_zoh_diagonal_closed_form_and_singular_A(impl):
    a = torch.tensor([-0.5, -2.0, -7.0], dtype=torch.float64)
    B = torch.tensor([1.0, -3.0, 0.5], dtype=torch.float64)
    Abar, Bbar = impl.zoh_discretize(torch.diag(a), B, 0.1)
    torch.testing.assert_close(Abar, torch.diag(torch.exp(0.1 * a)))
    torch.testing.assert_close(Bbar, (torch.exp(0.1 * a) - 1) / a * B)
    # A = 0 (a pure integrator): Abar = I, Bbar = delta * B. A formula with A^{-1} fails here.
    Abar0, Bbar0 = impl.zoh_discretize(torch.zeros(3, 3, dtype=torch.float64), B, 0.25)
    torch.testing.assert_close(Abar0, torch.eye(3, dtype=torch.float64))
    torch.testing.assert_close(Bbar0, 0.25 * B)


@pytest.mark.m3_t1
def test_zoh_accepts_several_input_channels(impl):
    A, _, _ = random_stable_system(3, seed=1)
    B = torch.randn(3, 2, dtype=torch.float64)
    Abar, Bbar = impl.zoh_discretize(A, B, 0.2)
    assert Bbar.shape == (3, 2)
    for j in range(2):
        torch.testing.assert_close(impl.zoh_discretize(A, B[:, j], 0.2)[1], Bbar[:, j])


def test_diagonal_helper_agrees_with_the_matrix_version():
    a = -torch.rand(5, dtype=torch.float64) * 3 - 0.1
    B = torch.randn(5, dtype=torch.float64)
    Abar, Bbar = zoh_discretize(torch.diag(a), B, 0.07)
    dA, dB = zoh_discretize_diagonal(a, B, torch.tensor(0.07, dtype=torch.float64))
    torch.testing.assert_close(torch.diagonal(Abar), dA)
    torch.testing.assert_close(Bbar, dB)


def test_lti_recurrence_equals_fft_convolution():
    A, B, C = random_stable_system(6, seed=2)
    Abar, Bbar = zoh_discretize(A, B, 0.1)
    u = torch.randn(3, 200, dtype=torch.float64)
    y_rec = ssm_recurrence(Abar, Bbar, C, u)
    y_conv = causal_convolution(u, ssm_kernel(Abar, Bbar, C, 200))
    torch.testing.assert_close(y_conv, y_rec, atol=1e-10, rtol=1e-8)


def test_fft_convolution_equals_direct_sum():
    u, K = torch.randn(50, dtype=torch.float64), torch.randn(50, dtype=torch.float64)
    direct = torch.stack([sum(K[j] * u[k - j] for j in range(k + 1)) for k in range(50)])
    torch.testing.assert_close(causal_convolution(u, K), direct)


def _selective_system(N=4, seed=3):
    """delta, B, C computed from the current input, as in Mamba (one channel)."""
    g = torch.Generator().manual_seed(seed)
    A = -torch.arange(1, N + 1, dtype=torch.float64)
    w_b, w_c = (torch.randn(N, generator=g, dtype=torch.float64) for _ in range(2))

    def matrix(u):
        delta = torch.nn.functional.softplus(1.5 * u - 1.0)
        return selective_matrix(delta, A, u[:, None] * w_b + 0.5, u[:, None] * w_c + 0.5)

    return A, matrix


def test_selective_matrix_is_the_scan():
    A, matrix = _selective_system()
    u = torch.randn(40, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    delta = torch.nn.functional.softplus(1.5 * u - 1.0)
    g = torch.Generator().manual_seed(3)
    w_b, w_c = (torch.randn(4, generator=g, dtype=torch.float64) for _ in range(2))
    B, C = u[:, None] * w_b + 0.5, u[:, None] * w_c + 0.5
    y_scan = selective_scan(u[None, None], delta[None, None], A[None], B.T[None], C.T[None], mode="sequential")
    torch.testing.assert_close(y_scan[0, 0], matrix(u) @ u, atol=1e-10, rtol=1e-8)


def test_lti_is_a_convolution_and_selective_is_not():
    """A convolution is a linear time-invariant map: one kernel for every input. An LTI SSM's
    matrix is Toeplitz and obeys superposition; a selective SSM's matrix depends on the input
    (not Toeplitz, different for every input), so superposition fails and no kernel exists."""
    A, matrix = _selective_system()
    L = 40
    g = torch.Generator().manual_seed(1)
    u1, u2 = torch.randn(L, generator=g, dtype=torch.float64), torch.randn(L, generator=g, dtype=torch.float64)
    B, C = torch.randn(1, 4, generator=g, dtype=torch.float64), torch.randn(1, 4, generator=g, dtype=torch.float64)
    lti = selective_matrix(torch.full((L,), 0.3, dtype=torch.float64), A, B.expand(L, -1), C.expand(L, -1))
    assert toeplitz_defect(lti) < 1e-12
    torch.testing.assert_close(lti @ (u1 + u2), lti @ u1 + lti @ u2)
    # The LTI matrix is exactly the convolution with the SSM's kernel.
    kernel = lti[:, 0]
    torch.testing.assert_close(causal_convolution(u1, kernel), lti @ u1)
    assert toeplitz_defect(matrix(u1)) > 0.1
    assert (matrix(u1) - matrix(u2)).abs().max() > 0.1
    superposed = matrix(u1 + u2) @ (u1 + u2)
    assert (superposed - (matrix(u1) @ u1 + matrix(u2) @ u2)).abs().max() > 0.1
