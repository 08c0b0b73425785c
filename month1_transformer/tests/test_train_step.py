"""Graded: one training step (m1_t8), and the same step inside the full loop."""

import copy

import pytest
import torch

from month1_transformer.model import GPT, GPTConfig
from shared.training import train_step as reference_train_step


def _model_and_batch():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=30, block_size=16, n_layer=2, n_head=2, n_embd=32))
    x = torch.randint(0, 30, (4, 16))
    return model, (x, torch.roll(x, -1, dims=1))


@pytest.mark.m1_t8
def test_train_step_matches_reference(impl):
    model, batch = _model_and_batch()
    ref_model = copy.deepcopy(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ref_opt = torch.optim.AdamW(ref_model.parameters(), lr=1e-2)
    for _ in range(3):
        loss = impl.train_step(model, opt, batch, grad_clip=0.5)
        ref_loss = reference_train_step(ref_model, ref_opt, batch, grad_clip=0.5)
        assert isinstance(loss, float)
        assert loss == pytest.approx(ref_loss, rel=1e-5)
    for (name, p), q in zip(model.named_parameters(), ref_model.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5, msg=f"parameter {name} differs")


@pytest.mark.m1_t8
def test_train_step_lowers_the_loss(impl):
    model, batch = _model_and_batch()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = [impl.train_step(model, opt, batch) for _ in range(30)]
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.m1_t8
def test_train_step_clips_gradients(impl):
    """With a tiny clip and plain SGD, the update's size is bounded by lr * grad_clip."""
    model, batch = _model_and_batch()
    before = [p.detach().clone() for p in model.parameters()]
    impl.train_step(model, torch.optim.SGD(model.parameters(), lr=1.0), batch, grad_clip=1e-3)
    update = torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(model.parameters(), before)))
    assert update.item() <= 1e-3 * 1.01
