"""The Mamba layer and model: causal conv (graded m3_t4), the mixer forward (m3_t5), the
recurrent step (m3_t6), and the model's streaming: chunked prefill and token-by-token steps
equal the full-sequence forward, with a state whose size does not depend on the length."""

import pytest
import torch
from torch import nn

from month3_mamba.model import MambaConfig, MambaLM, MambaMixer, state_nbytes

TOL = {"rtol": 1e-4, "atol": 1e-5}


@pytest.mark.m3_t4
def test_causal_conv_matches_torch_conv1d(impl):
    torch.manual_seed(0)
    conv = nn.Conv1d(6, 6, 4, groups=6, padding=3)  # pads both sides: keep the first L outputs
    x = torch.randn(2, 6, 20)
    y, state = impl.causal_depthwise_conv1d(x, conv.weight, conv.bias)
    torch.testing.assert_close(y, conv(x)[..., :20], **TOL)
    torch.testing.assert_close(state, x[..., -3:])
    y_nobias, _ = impl.causal_depthwise_conv1d(x, conv.weight)
    torch.testing.assert_close(y_nobias, conv(x)[..., :20] - conv.bias[:, None], **TOL)


@pytest.mark.m3_t4
def test_causal_conv_streams_in_chunks(impl):
    torch.manual_seed(1)
    weight, bias = torch.randn(3, 1, 4), torch.randn(3)
    x = torch.randn(1, 3, 17)
    full, _ = impl.causal_depthwise_conv1d(x, weight, bias)
    state, parts = None, []
    for a, b in [(0, 2), (2, 3), (3, 11), (11, 17)]:  # chunks shorter and longer than the kernel
        y, state = impl.causal_depthwise_conv1d(x[..., a:b], weight, bias, state)
        parts.append(y)
    torch.testing.assert_close(torch.cat(parts, -1), full, **TOL)


def _mixer_pair(impl, seed=0):
    cfg = MambaConfig(d_model=16, d_state=4, dt_rank=3)
    torch.manual_seed(seed)
    ref = MambaMixer(cfg).eval()
    ours = impl.MambaMixer(cfg).eval()
    ours.load_state_dict(ref.state_dict())
    return cfg, ref, ours


@pytest.mark.m3_t5
def test_mixer_forward_matches_reference(impl):
    cfg, ref, ours = _mixer_pair(impl)
    x = torch.randn(2, 25, 16)
    torch.testing.assert_close(ours(x), ref(x), **TOL)


@pytest.mark.m3_t5
def test_mixer_forward_is_causal_and_carries_state(impl):
    cfg, ref, ours = _mixer_pair(impl, seed=1)
    x = torch.randn(1, 30, 16)
    full = ours(x)
    x2 = x.clone()
    x2[:, 20:] += 1.0
    torch.testing.assert_close(ours(x2)[:, :20], full[:, :20], **TOL)
    state = ref.init_state(1)
    parts = [ours(x[:, a:b], state) for a, b in [(0, 7), (7, 8), (8, 30)]]
    torch.testing.assert_close(torch.cat(parts, 1), full, **TOL)


@pytest.mark.m3_t6
def test_recurrent_step_equals_parallel_forward(impl):
    cfg, ref, _ = _mixer_pair(impl, seed=2)
    x = torch.randn(2, 19, 16)
    full = ref(x)
    state = ref.init_state(2)
    steps = torch.stack([impl.mamba_step(ref, x[:, t], state) for t in range(19)], 1)
    torch.testing.assert_close(steps, full, **TOL)
    # The state it leaves is the one a chunked forward leaves.
    chunk_state = ref.init_state(2)
    ref(x, chunk_state)
    torch.testing.assert_close(state.ssm, chunk_state.ssm, **TOL)
    torch.testing.assert_close(state.conv, chunk_state.conv, **TOL)


@pytest.fixture
def tiny_lm():
    torch.manual_seed(0)
    return MambaLM(MambaConfig(vocab_size=40, d_model=24, n_layer=2, d_state=8)).eval()


def test_chunked_prefill_and_steps_equal_full_forward(tiny_lm):
    idx = torch.randint(0, 40, (2, 45))
    with torch.no_grad():
        full, _ = tiny_lm(idx)
        state = tiny_lm.new_state(2)
        chunks = torch.cat([tiny_lm(idx[:, a : a + 16], state=state)[0] for a in range(0, 45, 16)], 1)
        state = tiny_lm.new_state(2)
        prefix, _ = tiny_lm(idx[:, :30], state=state)  # prefill, then decode step by step
        steps = torch.stack([tiny_lm.step(idx[:, t], state) for t in range(30, 45)], 1)
    torch.testing.assert_close(chunks, full, **TOL)
    torch.testing.assert_close(torch.cat([prefix, steps], 1), full, **TOL)


def test_chunked_scan_model_equals_sequential_model(tiny_lm):
    other = MambaLM(MambaConfig(vocab_size=40, d_model=24, n_layer=2, d_state=8, scan="chunked", chunk_size=8))
    other.load_state_dict(tiny_lm.state_dict())
    idx = torch.randint(0, 40, (2, 45))
    with torch.no_grad():
        torch.testing.assert_close(other.eval()(idx)[0], tiny_lm(idx)[0], **TOL)


def test_state_size_does_not_grow_with_length(tiny_lm):
    state = tiny_lm.new_state(1)
    size0 = state_nbytes(state)
    # 2 layers x (conv 48 x 3 + ssm 48 x 8) floats
    assert size0 == 2 * (48 * 3 + 48 * 8) * 4
    with torch.no_grad():
        for _ in range(5):
            tiny_lm(torch.randint(0, 40, (1, 200)), state=state)
    assert state_nbytes(state) == size0


def test_loss_ignores_minus_one_and_trains():
    torch.manual_seed(0)
    model = MambaLM(MambaConfig(vocab_size=8, d_model=16, n_layer=1, d_state=4)).train()
    # A copy task at lag 3 needs the conv (window 4): learnable in a few dozen steps.
    x = torch.randint(0, 8, (16, 32))
    y = torch.full_like(x, -1)
    y[:, 3:] = x[:, :-3]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 1.9 and losses[-1] < 0.5, losses[::10]
