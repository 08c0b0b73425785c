"""Graded: LayerNorm and RMSNorm from scratch (m1_t5), against torch.nn."""

import pytest
import torch
from torch import nn


@pytest.mark.m1_t5
def test_layernorm_matches_nn(impl):
    torch.manual_seed(0)
    ours, ref = impl.LayerNorm(24), nn.LayerNorm(24)
    with torch.no_grad():
        for p in (ref.weight, ref.bias):
            p.copy_(torch.randn_like(p))
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3, 5, 24) * 4 + 2
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


@pytest.mark.m1_t5
def test_layernorm_without_bias(impl):
    ours, ref = impl.LayerNorm(8, bias=False), nn.LayerNorm(8, bias=False)
    x = torch.randn(4, 8)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


@pytest.mark.m1_t5
def test_layernorm_gradients_match_nn(impl):
    x = torch.randn(6, 16, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    ours, ref = impl.LayerNorm(16), nn.LayerNorm(16)
    (ours(x) ** 2).sum().backward()
    (ref(x_ref) ** 2).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, atol=1e-4, rtol=1e-4)


@pytest.mark.m1_t5
def test_rmsnorm_matches_nn(impl):
    torch.manual_seed(0)
    ours, ref = impl.RMSNorm(24, eps=1e-6), nn.RMSNorm(24, eps=1e-6)
    with torch.no_grad():
        ref.weight.copy_(torch.randn(24))
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3, 5, 24) * 3
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)
