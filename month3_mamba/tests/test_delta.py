"""The delta-rule layer: our recurrence equals flash-linear-attention's reference (fla-core's
naive.py), the chunked form equals the recurrence (values and gradients), a key written
is read back and overwritten by a later write, a closed gate leaves the memory exactly as it was,
and the Mamba + delta model streams exactly like its full forward."""

import importlib.util
from importlib.metadata import distribution

import pytest
import torch
import torch.nn.functional as F

from month3_mamba.delta import (
    DeltaBlock,
    DeltaConfig,
    DeltaLM,
    delta_rule_chunked,
    delta_rule_recurrent,
    write_rates,
)
from month3_mamba.model import MambaBlock, state_nbytes
from month3_mamba.tests.test_rwkv_hybrid import _streams_like_full_forward


def delta_inputs(b=2, h=3, t=37, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k = (F.normalize(torch.randn(b, h, t, d, generator=g), dim=-1) for _ in range(2))
    v = torch.randn(b, h, t, d, generator=g)
    beta = torch.rand(b, h, t, generator=g)
    state = torch.randn(b, h, d, d, generator=g)
    return q, k, v, beta, state


def fla_reference():
    """fla-core's `delta_rule_recurrence` (the dev extra installs it), loaded from its file: the package's
    __init__ imports triton."""
    path = distribution("fla-core").locate_file("fla/ops/delta_rule/naive.py")
    spec = importlib.util.spec_from_file_location("fla_delta_rule_naive", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.delta_rule_recurrence


def test_recurrence_equals_flash_linear_attentions_reference():
    q, k, v, beta, state = delta_inputs()
    ours, ours_state = delta_rule_recurrent(q, k, v, beta, state)
    d = q.size(-1)  # fla scales q by d^-0.5 before reading; ours reads with q as given
    theirs, their_state = fla_reference()(q * d**0.5, k, v, beta, initial_state=state)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours_state, their_state, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("chunk", [1, 8, 64])
def test_chunked_equals_the_recurrence_values_and_gradients(chunk):
    inputs = [x.double().requires_grad_() for x in delta_inputs()]
    out_r, state_r = delta_rule_recurrent(*inputs)
    out_c, state_c = delta_rule_chunked(*inputs, chunk_size=chunk)  # 37 bytes: the last chunk padded
    torch.testing.assert_close(out_c, out_r)
    torch.testing.assert_close(state_c, state_r)
    grads_r = torch.autograd.grad((out_r.sin().sum() + state_r.sum()), inputs)
    grads_c = torch.autograd.grad((out_c.sin().sum() + state_c.sum()), inputs)
    for g_c, g_r in zip(grads_c, grads_r):
        torch.testing.assert_close(g_c, g_r)


def test_a_key_is_read_back_then_overwritten():
    d = 4
    keys = torch.eye(d)[None, None]  # 4 orthogonal keys, written with beta 1
    values = torch.arange(16.0).reshape(1, 1, d, d)
    empty = torch.zeros(1, 1, d, d)
    _, memory = delta_rule_chunked(keys, keys, values, torch.ones(1, 1, d), empty)
    read, _ = delta_rule_recurrent(keys, keys, torch.zeros_like(values), torch.zeros(1, 1, d), memory)
    torch.testing.assert_close(read, values)  # each key returns its own value, no blur from the others
    new = torch.full((1, 1, 1, d), -1.0)
    _, memory = delta_rule_recurrent(keys[:, :, :1], keys[:, :, :1], new, torch.ones(1, 1, 1), memory)
    read, _ = delta_rule_recurrent(keys, keys, torch.zeros_like(values), torch.zeros(1, 1, d), memory)
    torch.testing.assert_close(read[0, 0, 0], new[0, 0, 0])  # overwritten, not added to
    torch.testing.assert_close(read[0, 0, 1:], values[0, 0, 1:])


def test_a_closed_gate_leaves_the_memory_exactly_as_it_was():
    torch.manual_seed(0)
    model = DeltaLM(DeltaConfig(vocab_size=40, d_model=16, d_state=4, n_head=2)).eval()
    gate = model.backbone.layers[1].mixer.beta_proj
    ids = torch.randint(0, 40, (1, 30))
    assert 0 < float(write_rates(model, ids)[0].mean()) <= 1
    with torch.no_grad():
        state = model.new_state(1)
        model(ids, state=state)  # something written
        before = state[1].memory.clone()
        assert before.abs().sum() > 0
        gate.weight.zero_()
        gate.bias.fill_(-0.1)  # clamp(-0.1, 0, 1) = 0: no write at all
        model(torch.randint(0, 40, (1, 5000)), state=state)
    assert torch.equal(state[1].memory, before)  # bit for bit, after 5,000 more bytes
    assert write_rates(model, ids)[0].tolist() == [0.0, 0.0]


def test_layout_and_streaming_like_the_full_forward():
    cfg = DeltaConfig(vocab_size=30, d_model=16, n_layer=4, d_state=4, n_head=2, chunk_size=8)
    torch.manual_seed(0)
    model = DeltaLM(cfg).eval()
    assert [type(b) for b in model.backbone.layers] == [MambaBlock, DeltaBlock, MambaBlock, DeltaBlock]
    size = _streams_like_full_forward(model, 30)
    with torch.no_grad():
        state = model.new_state(2)
        model(torch.randint(0, 30, (2, 300)), state=state)
    assert state_nbytes(state) == size  # constant whatever the length
    assert state[1].memory.shape == (2, 2, 16, 16)  # heads x (d_inner / heads)^2
    with pytest.raises(ValueError, match="divisible by n_head"):
        DeltaConfig(d_model=16, n_head=3)
