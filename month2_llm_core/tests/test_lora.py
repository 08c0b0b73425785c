"""Graded (m2_t1): a LoRA linear layer from scratch, checked against peft's LoraLayer."""

import copy
import math

import pytest
import torch
from peft import LoraConfig
from peft.tuners.lora import Linear as PeftLoraLinear
from torch import nn

ATOL = 1e-5


def _pair(impl, r=4, alpha=8.0, seed=0):
    """Our layer and peft's on the same base weights, with peft's (non-zero) LoRA weights copied into ours."""
    torch.manual_seed(seed)
    base = nn.Linear(24, 16)
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0)
    theirs = PeftLoraLinear(copy.deepcopy(base), "default", config, r=r, lora_alpha=alpha, lora_dropout=0.0)
    with torch.no_grad():
        theirs.lora_B["default"].weight.normal_(0, 0.5)  # zero at init: make the update visible
    ours = impl.LoRALinear(copy.deepcopy(base), r=r, alpha=alpha)
    with torch.no_grad():
        ours.lora_A.weight.copy_(theirs.lora_A["default"].weight)
        ours.lora_B.weight.copy_(theirs.lora_B["default"].weight)
    return base, ours, theirs


@pytest.mark.m2_t1
@pytest.mark.parametrize("r,alpha", [(4, 8.0), (8, 16.0), (2, 1.0)])
def test_lora_equals_peft_on_the_same_weights(impl, r, alpha):
    _, ours, theirs = _pair(impl, r, alpha)
    x = torch.randn(3, 5, 24)
    torch.testing.assert_close(ours(x), theirs(x), atol=ATOL, rtol=1e-5)
    assert ours.scaling == pytest.approx(theirs.scaling["default"])


@pytest.mark.m2_t1
def test_lora_starts_equal_to_the_base_layer_and_trains_only_a_and_b(impl):
    torch.manual_seed(1)
    base = nn.Linear(64, 32)
    layer = impl.LoRALinear(copy.deepcopy(base), r=8, alpha=16)
    x = torch.randn(4, 64)
    torch.testing.assert_close(layer(x), base(x), atol=0, rtol=0)  # B = 0 at init
    trainable = {n for n, p in layer.named_parameters() if p.requires_grad}
    assert trainable == {"lora_A.weight", "lora_B.weight"}
    assert sum(p.numel() for p in layer.parameters() if p.requires_grad) == 8 * (64 + 32)
    # peft's initialisation: A Kaiming-uniform(a=sqrt(5)) -> U(-1/sqrt(in), 1/sqrt(in)), B zeros.
    bound = 1 / math.sqrt(64)
    a = layer.lora_A.weight
    assert a.abs().max() <= bound + 1e-6 and a.std() > 0.8 * bound / math.sqrt(3)
    assert torch.count_nonzero(layer.lora_B.weight) == 0


@pytest.mark.m2_t1
def test_lora_learns_a_low_rank_change_while_the_base_stays_frozen(impl):
    torch.manual_seed(2)
    base = nn.Linear(32, 32, bias=False)
    target = copy.deepcopy(base)
    with torch.no_grad():  # the task: the base weights plus a rank-2 change
        target.weight += torch.randn(32, 2) @ torch.randn(2, 32) * 0.3
    layer = impl.LoRALinear(copy.deepcopy(base), r=4, alpha=4)
    frozen = layer.base.weight.detach().clone()
    opt = torch.optim.Adam([p for p in layer.parameters() if p.requires_grad], lr=3e-2)
    x = torch.randn(256, 32)
    losses = []
    for _ in range(150):
        loss = (layer(x) - target(x).detach()).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]
    assert torch.equal(layer.base.weight, frozen)


@pytest.mark.m2_t1
def test_merge_gives_a_plain_linear_equal_to_peft_merge(impl):
    _, ours, theirs = _pair(impl, r=4, alpha=8.0)
    merged = ours.merge()
    assert type(merged) is nn.Linear
    x = torch.randn(7, 24)
    torch.testing.assert_close(merged(x), ours(x), atol=ATOL, rtol=1e-5)
    theirs.merge()
    torch.testing.assert_close(merged.weight, theirs.base_layer.weight, atol=ATOL, rtol=1e-5)
