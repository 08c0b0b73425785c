"""The MoE layer on the same weights as the per-token loop (month4_moe/reference.py): every routing scheme,
both dispatch forms, capacity and dropping, dropless, the shared expert; padding; the aux-free bias;
load metrics and the collapse warning."""

import warnings

import pytest
import torch

from month4_moe.layer import MoEConfig, MoELayer
from month4_moe.metrics import mutual_information, warn_if_collapsed
from month4_moe.reference import dense_loop

TOL = {"rtol": 1e-5, "atol": 1e-5}


def build(d=16, seed=0, bias_values=True, **kw):
    torch.manual_seed(seed)
    layer = MoELayer(d, MoEConfig(**kw))
    with torch.no_grad():  # non-zero biases and a livelier router than the 0.02 init
        layer.router.weight.weight.normal_(std=0.5)
        if bias_values and layer.experts.b1 is not None:
            layer.experts.b1.normal_(std=0.1)
            layer.experts.b2.normal_(std=0.1)
    return layer


@pytest.mark.parametrize("dispatch", ["sort", "einsum"])
@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("capacity_factor, dropless", [(0.6, False), (1.25, False), (1.0, True)])
@pytest.mark.parametrize("renormalize", ["after_drop", "before_drop"])
def test_layer_equals_the_dense_loop(dispatch, k, capacity_factor, dropless, renormalize):
    layer = build(top_k=k, dispatch=dispatch, capacity_factor=capacity_factor, dropless=dropless,
                  renormalize=renormalize)
    x = torch.randn(48, 16)
    torch.testing.assert_close(layer(x), dense_loop(layer, x), **TOL)
    if capacity_factor < 1 and not dropless:
        assert layer.stats.dropped_share > 0.1  # the test exercised dropping


@pytest.mark.parametrize("kw", [
    {"expert_act": "swiglu", "top_k": 2}, {"shared_expert": True, "top_k": 1, "capacity_factor": 0.5},
    {"aux_free": True, "top_k": 2}, {"n_experts": 8, "top_k": 3, "capacity_factor": 0.8}, {"bias": False}])
def test_layer_variants_equal_the_dense_loop(kw):
    bias = kw.pop("bias", True)
    torch.manual_seed(0)
    layer = build(**kw) if bias else MoELayer(16, MoEConfig())
    if layer.cfg.aux_free:
        layer.router.selection_bias.copy_(torch.tensor([0.3, -0.2, 0.0, 0.1]))
    x = torch.randn(40, 16)
    torch.testing.assert_close(layer(x), dense_loop(layer, x), **TOL)


@pytest.mark.parametrize("k", [1, 2])
def test_sort_and_einsum_forms_agree_with_gradients(k):
    a, b = build(top_k=k, dispatch="sort", capacity_factor=0.8), build(top_k=k, dispatch="einsum", capacity_factor=0.8)
    x = torch.randn(3, 20, 16)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = a(xa), b(xb)
    torch.testing.assert_close(ya, yb, **TOL)
    (ya.square().sum() + a.aux_loss).backward()
    (yb.square().sum() + b.aux_loss).backward()
    torch.testing.assert_close(xa.grad, xb.grad, **TOL)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, **TOL, msg=name)


def test_dropped_tokens_pass_through_the_residual():
    layer = build(top_k=1, capacity_factor=0.25, min_capacity=0)
    x = torch.randn(64, 16)
    y = layer(x)
    chosen = layer.last_choice
    kept = torch.zeros(64, dtype=torch.bool)
    for e in range(4):  # the first `capacity` tokens of each expert are kept
        kept[(chosen == e).nonzero().flatten()[:layer.capacity(64)]] = True
    assert (~kept).sum() > 20
    assert torch.equal(y[~kept], torch.zeros_like(y[~kept]))  # so x + moe(x) = x for them
    assert (y[kept].abs().sum(-1) > 0).all()


def test_train_and_eval_capacity_factors_differ():
    layer = build(top_k=1, capacity_factor=0.5, eval_capacity_factor=2.0, min_capacity=0)
    assert layer.capacity(100) == 13
    layer.eval()
    assert layer.capacity(100) == 50


def test_padding_is_excluded_from_the_aux_loss_and_gets_no_expert():
    layer = build(top_k=2, capacity_factor=4.0)
    x = torch.randn(30, 16)
    padded = torch.cat([x, torch.randn(10, 16) * 5])
    mask = torch.arange(40) < 30
    y_real = layer(x)
    loss_real, stats_real = layer.aux_loss, layer.stats
    y_pad = layer(padded, mask)
    torch.testing.assert_close(layer.aux_loss, loss_real, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(y_pad[:30], y_real, **TOL)
    assert torch.equal(y_pad[30:], torch.zeros(10, 16))
    assert layer.stats.routes_per_expert == stats_real.routes_per_expert and layer.stats.tokens == 30


def test_aux_free_bias_selects_but_never_changes_combine_weights():
    """With a bias that overturns some choices: a token routed the same way gets the same output as
    without the bias (its weights are the unbiased probabilities), and the bias gets no gradient."""
    plain, biased = build(top_k=1, dropless=True), build(top_k=1, dropless=True, aux_free=True)
    biased.router.selection_bias.copy_(torch.tensor([0.0, 0.4, 0.0, 0.0]))
    x = torch.randn(200, 16)
    y_plain, y_biased = plain(x), biased(x)
    same = plain.last_choice == biased.last_choice
    assert 20 < (~same).sum() < 180  # the bias changed some selections, not all
    torch.testing.assert_close(y_biased[same], y_plain[same], rtol=0, atol=0)
    assert not biased.router.selection_bias.requires_grad
    assert "router.selection_bias" in biased.state_dict() and "router.selection_bias" not in plain.state_dict()


def test_aux_free_bias_updates_only_in_training_and_balances_load():
    layer = build(top_k=1, aux_free=True, bias_update_rate=0.005, dropless=True)
    with torch.no_grad():
        layer.router.weight.weight[0] += 0.5  # expert 0 over-chosen for inputs along +1
    x = torch.randn(512, 16) + 0.5
    layer.eval()
    layer(x)
    assert torch.equal(layer.router.selection_bias, torch.zeros(4))
    start = layer.stats.max_over_mean
    layer.train()
    for _ in range(300):
        layer(x)
    assert start > 1.8 and layer.stats.max_over_mean < 1.3, (start, layer.stats)


def test_expert_choice_gives_each_expert_its_capacity():
    layer = build(routing="expert_choice", top_k=1, capacity_factor=1.0)
    x = torch.randn(40, 16)
    y = layer(x)
    assert layer.stats.routes_per_expert == [10, 10, 10, 10]
    probs = torch.softmax(x @ layer.router.weight.weight.t(), -1)
    ref = torch.zeros_like(y)
    for e in range(4):  # each expert's 10 best tokens, weighted by their probability
        for t in probs[:, e].topk(10).indices.tolist():
            ref[t] += probs[t, e] * layer.experts.forward_expert(e, x[t:t + 1])[0]
    torch.testing.assert_close(y, ref, **TOL)


def test_noisy_gating_is_noise_in_training_only():
    layer = build(top_k=1, noisy_gate=True, dropless=True)
    x = torch.randn(100, 16)
    layer.eval()
    assert torch.equal(layer(x), layer(x))
    layer.train()
    torch.manual_seed(1)
    first = layer(x).detach()
    choice = layer.last_choice
    second = layer(x)
    assert not torch.equal(first, second) and (choice != layer.last_choice).any()
    second.sum().backward()
    assert layer.router.noise.weight.grad.abs().sum() > 0


def test_load_metrics_and_the_collapse_warning():
    layer = build(top_k=1, dropless=True)
    with torch.no_grad():
        layer.router.weight.weight.zero_()
        layer.router.weight.weight[2, 0] = 50.0
    x = torch.randn(100, 16)
    x[:, 0] = x[:, 0].abs() + 0.1  # every token prefers expert 2
    layer(x)
    s = layer.stats
    assert s.routes_per_expert == [0, 0, 100, 0] and s.collapsed and s.max_over_mean == 4.0
    assert s.load_cv == pytest.approx(3 ** 0.5)  # sqrt(E - 1) for a total collapse
    with pytest.warns(RuntimeWarning, match="layer 0: expert 2 took 100% of the tokens"):
        assert warn_if_collapsed([s], step=7)
    balanced = build(top_k=1)
    balanced(torch.randn(400, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_collapsed([balanced.stats])


def test_mutual_information_bits():
    assert mutual_information(torch.eye(4) * 100) == pytest.approx(2.0)
    assert mutual_information(torch.ones(4, 4)) == pytest.approx(0.0, abs=1e-12)
    two = torch.tensor([[50.0, 50, 0, 0], [50, 50, 0, 0], [0, 0, 50, 50], [0, 0, 50, 50]])
    assert mutual_information(two) == pytest.approx(1.0)


@pytest.mark.parametrize("kw, says", [
    ({"top_k": 5}, "top_k must be between 1 and n_experts=4"), ({"n_experts": 0}, "n_experts"),
    ({"capacity_factor": 0}, "capacity_factor"), ({"dispatch": "magic"}, "dispatch must be one of"),
    ({"routing": "expert_choice", "aux_free": True}, "aux_free")])
def test_bad_configs_are_clear_errors(kw, says):
    with pytest.raises(ValueError, match=says):
        MoEConfig(**kw)
