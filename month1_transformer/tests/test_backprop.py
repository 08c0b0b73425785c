"""Hand-written backward passes against torch.autograd on the same inputs.

Gradient checks run in float64 with atol 1e-10 / rtol 1e-8: a correct formula differs from
autograd only by rounding (~1e-15), a wrong one by far more.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from month1_transformer.backprop import (
    attention_head_backward,
    attention_head_forward,
    compare,
    layernorm_backward,
    layernorm_forward,
    linear_backward,
    linear_forward,
    numerical_gradient,
    softmax_cross_entropy_forward_backward,
)

ATOL, RTOL = 1e-10, 1e-8  # float64 vs autograd


def leaves(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """Copies that autograd tracks, so the manual pass sees plain tensors."""
    return [t.detach().clone().requires_grad_(True) for t in tensors]


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_linear_backward_matches_autograd() -> None:
    x, w, b, dy = randn(2, 3, 5, seed=1), randn(4, 5, seed=2), randn(4, seed=3), randn(2, 3, 4, seed=4)
    y, cache = linear_forward(x, w, b)
    dx, dw, db = linear_backward(dy, cache)

    xr, wr, br = leaves(x, w, b)
    yr = F.linear(xr, wr, br)
    yr.backward(dy)

    compare("y", y, yr, ATOL, RTOL)
    compare("dx", dx, xr.grad, ATOL, RTOL)
    compare("dw", dw, wr.grad, ATOL, RTOL)
    compare("db", db, br.grad, ATOL, RTOL)


def test_softmax_cross_entropy_matches_autograd() -> None:
    logits, targets = randn(6, 5, seed=5) * 3, torch.tensor([0, 4, 2, 2, 1, 3])
    loss, dlogits = softmax_cross_entropy_forward_backward(logits, targets)

    (ref_logits,) = leaves(logits)
    ref_loss = F.cross_entropy(ref_logits, targets)
    ref_loss.backward()

    compare("loss", loss, ref_loss, ATOL, RTOL)
    compare("dlogits", dlogits, ref_logits.grad, ATOL, RTOL)


def test_softmax_cross_entropy_float32() -> None:
    logits = randn(8, 10, seed=6).float() * 3
    targets = torch.arange(8) % 10
    loss, dlogits = softmax_cross_entropy_forward_backward(logits, targets)

    (ref_logits,) = leaves(logits)
    ref_loss = F.cross_entropy(ref_logits, targets)
    ref_loss.backward()

    assert loss.dtype == dlogits.dtype == torch.float32
    compare("loss", loss, ref_loss, atol=1e-5, rtol=0.0)
    compare("dlogits", dlogits, ref_logits.grad, atol=1e-5, rtol=0.0)


# A loss of ~1e4 in float32 is only good to ~1e-3 absolute, hence a relative tolerance.
@pytest.mark.parametrize("dtype, rtol", [(torch.float32, 1e-5), (torch.float64, 1e-10)], ids=["f32", "f64"])
def test_softmax_cross_entropy_is_stable_on_large_logits(dtype: torch.dtype, rtol: float) -> None:
    # exp(1e4) overflows any float type; without the max shift this is inf / nan.
    logits = (randn(4, 6, seed=7) * 1e4).to(dtype)
    targets = torch.tensor([1, 0, 5, 3])
    loss, dlogits = softmax_cross_entropy_forward_backward(logits, targets)

    assert torch.isfinite(loss) and torch.isfinite(dlogits).all()
    (ref_logits,) = leaves(logits)
    ref_loss = F.cross_entropy(ref_logits, targets)
    ref_loss.backward()
    compare("loss", loss, ref_loss, atol=0.0, rtol=rtol)
    compare("dlogits", dlogits, ref_logits.grad, atol=1e-6, rtol=0.0)


@pytest.mark.m1_t7
@pytest.mark.parametrize("scale", [1.0, 1e4], ids=["unit-logits", "large-logits"])
def test_graded_softmax_cross_entropy_backward(impl, scale: float) -> None:
    logits = randn(5, 7, seed=8) * scale
    targets = torch.tensor([6, 0, 3, 3, 1])
    loss, dlogits = impl.softmax_cross_entropy_forward_backward(logits.clone(), targets)

    (ref_logits,) = leaves(logits)
    ref_loss = F.cross_entropy(ref_logits, targets)
    ref_loss.backward()

    compare("loss", torch.as_tensor(loss, dtype=torch.float64), ref_loss, atol=ATOL, rtol=RTOL)
    compare("dlogits", dlogits, ref_logits.grad, atol=ATOL, rtol=RTOL)


def test_layernorm_backward_matches_autograd() -> None:
    x, dy = randn(2, 3, 8, seed=9) * 2 + 1, randn(2, 3, 8, seed=10)
    gamma, beta = randn(8, seed=11), randn(8, seed=12)
    y, cache = layernorm_forward(x, gamma, beta, eps=1e-5)
    dx, dgamma, dbeta = layernorm_backward(dy, cache)

    xr, gr, br = leaves(x, gamma, beta)
    yr = F.layer_norm(xr, (8,), gr, br, eps=1e-5)
    yr.backward(dy)

    compare("y", y, yr, ATOL, RTOL)
    compare("dx", dx, xr.grad, ATOL, RTOL)
    compare("dgamma", dgamma, gr.grad, ATOL, RTOL)
    compare("dbeta", dbeta, br.grad, ATOL, RTOL)


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "full"])
def test_attention_head_backward_matches_autograd(causal: bool) -> None:
    t, c, h = 5, 6, 4
    x, dout = randn(t, c, seed=13), randn(t, h, seed=14)
    wq, wk, wv = randn(c, h, seed=15), randn(c, h, seed=16), randn(c, h, seed=17)
    out, cache = attention_head_forward(x, wq, wk, wv, causal=causal)
    dx, dwq, dwk, dwv = attention_head_backward(dout, cache)

    # Autograd version of the same head; scaled_dot_product_attention scales by 1/sqrt(H) too.
    xr, wqr, wkr, wvr = leaves(x, wq, wk, wv)
    outr = F.scaled_dot_product_attention(xr @ wqr, xr @ wkr, xr @ wvr, is_causal=causal)
    outr.backward(dout)

    compare("out", out, outr, ATOL, RTOL)
    compare("dx", dx, xr.grad, ATOL, RTOL)
    compare("dwq", dwq, wqr.grad, ATOL, RTOL)
    compare("dwk", dwk, wkr.grad, ATOL, RTOL)
    compare("dwv", dwv, wvr.grad, ATOL, RTOL)


def test_numerical_gradient_matches_autograd() -> None:
    def f(x: torch.Tensor) -> torch.Tensor:
        return (x.sin() * x).sum() + (x**2).sum().sqrt()

    x = randn(3, 4, seed=18)
    numeric = numerical_gradient(f, x, eps=1e-6)

    (xr,) = leaves(x)
    f(xr).backward()
    # Finite differences carry ~1e-10 of error by themselves (see numerical_gradient).
    compare("df/dx", numeric, xr.grad, atol=1e-8, rtol=1e-6)


def test_numerical_gradient_rejects_float32() -> None:
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda x: x.sum(), torch.ones(3))


def test_compare_reports_name_and_worst_entry() -> None:
    reference = torch.zeros(2, 3, dtype=torch.float64)
    manual = reference.clone()
    manual[1, 2] = 1e-3
    assert compare("ok", reference.clone(), reference, atol=1e-10, rtol=1e-8) == 0.0
    with pytest.raises(AssertionError, match=r"dw: max abs diff 1\.000e-03 .* worst at \(1, 2\)"):
        compare("dw", manual, reference, atol=1e-10, rtol=1e-8)
