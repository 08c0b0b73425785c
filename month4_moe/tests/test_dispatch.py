"""Capacity, dispatch and combine (graded m4_t4) and a whole MoE forward (graded m4_t5), against
loops over tokens written from the definitions."""

import math

import pytest
import torch

from month4_moe.reference import gelu_mlp

TOL = {"rtol": 1e-5, "atol": 1e-6}


def routed(t=30, e=4, k=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(torch.randn(t, e, generator=g) * 2, -1)
    weights, experts = probs.topk(k, -1)
    return experts, weights


def loop_dispatch(experts, weights, n_experts, capacity):
    t, k = experts.shape
    dispatch = torch.zeros(t, n_experts, capacity, dtype=torch.bool)
    combine = torch.zeros(t, n_experts, capacity)
    used = [0] * n_experts
    for c in range(k):
        for i in range(t):
            e = int(experts[i, c])
            if used[e] < capacity:
                dispatch[i, e, used[e]] = True
                combine[i, e, used[e]] = weights[i, c]
                used[e] += 1
    return dispatch, combine


@pytest.mark.m4_t4
@pytest.mark.parametrize("n_tokens, n_experts, k, factor, minimum", [
    (100, 4, 1, 1.0, 4), (100, 4, 2, 1.25, 4), (7, 4, 1, 1.0, 4), (1000, 8, 2, 0.5, 0), (10, 3, 1, 1.0, 0)])
def test_capacity_formula(impl, n_tokens, n_experts, k, factor, minimum):
    expected = max(minimum, math.ceil(k * n_tokens * factor / n_experts))
    assert impl.expert_capacity(n_tokens, n_experts, k, factor, minimum) == expected


@pytest.mark.m4_t4
@pytest.mark.parametrize("k, capacity", [(1, 5), (2, 9), (2, 30), (1, 1)])
def test_dispatch_and_combine_match_the_loop(impl, k, capacity):
    experts, weights = routed(k=k)
    dispatch, combine = impl.dispatch_and_combine(experts, weights, 4, capacity)
    ref_dispatch, ref_combine = loop_dispatch(experts, weights, 4, capacity)
    assert dispatch.dtype == torch.bool and dispatch.shape == (30, 4, capacity)
    assert torch.equal(dispatch, ref_dispatch)
    torch.testing.assert_close(combine, ref_combine, **TOL)


@pytest.mark.m4_t4
def test_first_choices_before_second_choices(impl):
    """Expert 0 has 2 slots: token 2's first choice beats token 0's second choice."""
    experts = torch.tensor([[1, 0], [1, 0], [0, 1]])
    weights = torch.tensor([[0.6, 0.4], [0.7, 0.3], [0.9, 0.1]])
    dispatch, _ = impl.dispatch_and_combine(experts, weights, 2, 2)
    assert dispatch[2, 0, 0] and dispatch[0, 0, 1] and not dispatch[1, 0].any()
    assert dispatch[0, 1, 0] and dispatch[1, 1, 1] and not dispatch[2, 1].any()


@pytest.mark.m4_t4
def test_dispatch_moves_tokens_and_combine_brings_them_back(impl):
    experts, weights = routed(k=1, seed=3)
    dispatch, combine = impl.dispatch_and_combine(experts, weights, 4, 30)  # room for everyone
    x = torch.randn(30, 8)
    expert_in = torch.einsum("tec,td->ecd", dispatch.float(), x)
    out = torch.einsum("tec,ecd->td", combine, expert_in)  # identity experts
    torch.testing.assert_close(out, weights * x, **TOL)


def random_moe(t=40, d=12, h=20, e=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(t, d, generator=g)
    router = torch.randn(e, d, generator=g) * 0.5
    w1, b1 = torch.randn(e, d, h, generator=g) * 0.3, torch.randn(e, h, generator=g) * 0.1
    w2, b2 = torch.randn(e, h, d, generator=g) * 0.3, torch.randn(e, d, generator=g) * 0.1
    return x, router, w1, b1, w2, b2


def token_loop(x, router, w1, b1, w2, b2, k):
    out = torch.zeros_like(x)
    for t in range(len(x)):
        p = torch.softmax(router @ x[t], -1)
        best = sorted(range(len(p)), key=lambda e: -float(p[e]))[:k]
        total = sum(float(p[e]) for e in best) if k > 1 else 1.0
        for e in best:
            out[t] += float(p[e]) / total * gelu_mlp(x[t], w1[e], b1[e], w2[e], b2[e])
    return out


@pytest.mark.m4_t5
@pytest.mark.parametrize("k", [1, 2, 4])
def test_moe_forward_equals_the_dense_loop(impl, k):
    weights = random_moe()
    torch.testing.assert_close(impl.moe_forward(*weights, k), token_loop(*weights, k), rtol=1e-5, atol=1e-5)


@pytest.mark.m4_t5
def test_moe_forward_gradients_reach_router_and_experts(impl):
    weights = [w.clone().requires_grad_() for w in random_moe(seed=1)]
    impl.moe_forward(*weights, 2).square().sum().backward()
    x, router, w1, b1, w2, b2 = weights
    for name, w in (("x", x), ("router", router), ("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)):
        assert w.grad is not None and w.grad.abs().sum() > 0, name


@pytest.mark.m4_t5
def test_moe_forward_with_an_unused_expert(impl):
    x, router, w1, b1, w2, b2 = random_moe(seed=2)
    x, router[3] = x.abs(), -1e3  # positive inputs, expert 3's logit very negative: it gets no token
    torch.testing.assert_close(impl.moe_forward(x, router, w1, b1, w2, b2, 1),
                               token_loop(x, router, w1, b1, w2, b2, 1), rtol=1e-5, atol=1e-5)
