"""The router's pieces, graded: top-k gating (m4_t1), the Switch loss (m4_t2), the z-loss (m4_t3) and
the auxiliary-loss-free bias update (m4_t6); against per-token loops and transformers' Mixtral loss."""

import math

import pytest
import torch

TOL = {"rtol": 1e-5, "atol": 1e-6}


def logits_(t=23, e=4, seed=0, scale=2.0):
    return torch.randn(t, e, generator=torch.Generator().manual_seed(seed)) * scale


@pytest.mark.m4_t1
@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_k_gating_matches_a_per_token_sort(impl, k):
    logits = logits_()
    probs, experts, weights = impl.top_k_gating(logits, k, renormalize=True)
    torch.testing.assert_close(probs, torch.softmax(logits, -1), **TOL)
    assert experts.shape == weights.shape == (23, k) and experts.dtype == torch.long
    for t in range(23):
        p = torch.softmax(logits[t], -1)
        best = sorted(range(4), key=lambda e: -float(p[e]))[:k]
        assert experts[t].tolist() == best
        expected = p[best] / p[best].sum() if k > 1 else p[best]
        torch.testing.assert_close(weights[t], expected, **TOL)


@pytest.mark.m4_t1
def test_top1_keeps_its_probability_and_passes_a_gradient(impl):
    logits = logits_().requires_grad_()
    _, _, weights = impl.top_k_gating(logits, 1)
    assert not torch.allclose(weights, torch.ones_like(weights))  # Switch: weight p, not 1
    weights.sum().backward()
    assert logits.grad.abs().sum() > 0
    _, _, raw = impl.top_k_gating(logits.detach(), 2, renormalize=False)
    p = torch.softmax(logits.detach(), -1)
    torch.testing.assert_close(raw, p.topk(2, -1).values, **TOL)


@pytest.mark.m4_t1
def test_bias_selects_but_never_weights(impl):
    logits = logits_(seed=3)
    bias = torch.tensor([0.0, 0.0, 0.0, 5.0])  # expert 3 is always selected ...
    probs, experts, weights = impl.top_k_gating(logits, 2, renormalize=False, bias=bias)
    assert (experts == 3).any(-1).all()
    torch.testing.assert_close(weights, probs.gather(-1, experts), **TOL)  # ... with its unbiased probability
    torch.testing.assert_close(probs, torch.softmax(logits, -1), **TOL)


@pytest.mark.m4_t2
@pytest.mark.parametrize("k", [1, 2])
def test_switch_loss_is_one_for_a_uniform_router(impl, k):
    n = 4
    probs = torch.full((50, n), 1 / n)
    experts = torch.stack([torch.randperm(n)[:k] for _ in range(50)])  # whatever it chose
    assert impl.switch_load_balancing_loss(probs, experts).item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.m4_t2
@pytest.mark.parametrize("n", [2, 4, 8])
def test_switch_loss_is_n_for_a_collapsed_router(impl, n):
    probs = torch.zeros(30, n)
    probs[:, 0] = 1.0
    experts = torch.zeros(30, 1, dtype=torch.long)
    assert impl.switch_load_balancing_loss(probs, experts).item() == pytest.approx(n, abs=1e-5)


@pytest.mark.m4_t2
def test_switch_loss_matches_its_definition_and_mixtrals(impl):
    from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

    logits = logits_(t=40, e=4, seed=5)
    probs, experts, _ = torch.softmax(logits, -1), logits.topk(2, -1).indices, None
    f = torch.zeros(4)
    for t in range(40):
        for e in experts[t].tolist():
            f[e] += 1 / 80
    expected = 4 * (f * probs.mean(0)).sum()
    got = impl.switch_load_balancing_loss(probs, experts)
    torch.testing.assert_close(got, expected, **TOL)
    # transformers counts each of the k choices as a whole: its loss is ours times k.
    theirs = load_balancing_loss_func((logits,), num_experts=4, top_k=2)
    torch.testing.assert_close(got * 2, theirs, **TOL)


@pytest.mark.m4_t2
def test_padding_never_counts(impl):
    """Padding tokens (often all routed to one expert, with skewed probabilities) must change nothing."""
    logits = logits_(t=30, seed=7)
    probs, experts = torch.softmax(logits, -1), logits.topk(1, -1).indices
    pad_probs = torch.zeros(20, 4)
    pad_probs[:, 2] = 1.0
    padded_probs = torch.cat([probs, pad_probs])
    padded_experts = torch.cat([experts, torch.full((20, 1), 2)])
    mask = torch.arange(50) < 30
    real = impl.switch_load_balancing_loss(probs, experts)
    torch.testing.assert_close(impl.switch_load_balancing_loss(padded_probs, padded_experts, mask), real, **TOL)
    assert not torch.allclose(impl.switch_load_balancing_loss(padded_probs, padded_experts), real)
    assert impl.switch_load_balancing_loss(padded_probs, padded_experts, torch.zeros(50, dtype=torch.bool)) == 0


@pytest.mark.m4_t2
def test_padding_matches_mixtrals_attention_mask(impl):
    from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

    logits = logits_(t=2 * 9, seed=11)
    attention_mask = torch.ones(2, 9, dtype=torch.long)
    attention_mask[1, 5:] = 0
    mask = attention_mask.reshape(-1).bool()
    theirs = load_balancing_loss_func((logits,), num_experts=4, top_k=1, attention_mask=attention_mask)
    ours = impl.switch_load_balancing_loss(torch.softmax(logits, -1), logits.topk(1, -1).indices, mask)
    torch.testing.assert_close(ours, theirs, **TOL)


@pytest.mark.m4_t3
def test_z_loss_is_the_mean_squared_logsumexp(impl):
    logits = logits_(seed=2)
    expected = sum(math.log(sum(math.exp(v) for v in row)) ** 2 for row in logits.tolist()) / len(logits)
    assert impl.router_z_loss(logits).item() == pytest.approx(expected, rel=1e-5)
    big = logits + 500.0  # logsumexp, not log(sum(exp)): no overflow
    assert math.isfinite(impl.router_z_loss(big).item())


@pytest.mark.m4_t3
def test_z_loss_skips_padding_and_shrinks_logits(impl):
    logits = logits_(seed=4)
    mask = torch.arange(23) < 15
    torch.testing.assert_close(impl.router_z_loss(logits, mask), impl.router_z_loss(logits[:15]), **TOL)
    assert impl.router_z_loss(logits, torch.zeros(23, dtype=torch.bool)) == 0
    x = (logits + 3).requires_grad_()
    impl.router_z_loss(x).backward()
    assert (x.grad.sum(-1) > 0).all()  # gradient descent lowers every token's logsumexp


@pytest.mark.m4_t6
def test_bias_update_follows_the_sign_rule(impl):
    bias = torch.tensor([0.5, 0.0, -0.5, 0.0])
    load = torch.tensor([10, 30, 20, 20])  # mean 20
    new = impl.aux_free_bias_update(bias, load, 0.01)
    torch.testing.assert_close(new, torch.tensor([0.51, -0.01, -0.5, 0.0]), **TOL)
    assert torch.equal(bias, torch.tensor([0.5, 0.0, -0.5, 0.0]))  # a new tensor, the old one untouched


@pytest.mark.m4_t6
def test_bias_updates_balance_a_skewed_router(impl):
    """A router that prefers expert 0 for every token becomes balanced by the bias alone."""
    g = torch.Generator().manual_seed(0)
    skew = torch.tensor([1.5, 0.5, 0.0, -0.5])
    bias = torch.zeros(4)
    first = None
    for _ in range(400):
        logits = torch.randn(256, 4, generator=g) + skew
        probs = torch.softmax(logits, -1)
        experts = (probs + bias).topk(1, -1).indices
        load = torch.bincount(experts[:, 0], minlength=4)
        first = load if first is None else first
        bias = impl.aux_free_bias_update(bias, load, 0.01)
    assert first.max() / first.float().mean() > 2.0
    assert load.max() / load.float().mean() < 1.3, load
