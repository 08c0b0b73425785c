"""RWKV's WKV recurrence (graded m3_t7) and its parallel form; the RWKV and hybrid models stream
exactly like their full forward, with states that stop growing (hybrid: the attention window)."""

import pytest
import torch

from month1_transformer.attention import MultiHeadAttention
from month3_mamba.hybrid import AttentionBlock, HybridConfig, HybridLM, sliding_window_mask
from month3_mamba.model import MambaBlock, state_nbytes
from month3_mamba.rwkv import RWKVLM, RWKVConfig, wkv_parallel, wkv_recurrent

TOL = {"rtol": 1e-4, "atol": 1e-5}


def naive_wkv(w, u, k, v):
    """The formula as written (float64, moderate k: no overflow)."""
    b, t, d = k.shape
    out = torch.zeros(b, t, d, dtype=torch.float64)
    for i in range(t):
        past = torch.arange(i)
        weights = torch.exp(-(i - 1 - past)[None, :, None] * w + k[:, :i])
        now = torch.exp(u + k[:, i])
        out[:, i] = ((weights * v[:, :i]).sum(1) + now * v[:, i]) / (weights.sum(1) + now)
    return out


def wkv_inputs(b=2, t=30, d=5, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(d, generator=g) * 2 + 0.05
    u = torch.randn(d, generator=g)
    return w, u, torch.randn(b, t, d, generator=g) * scale, torch.randn(b, t, d, generator=g)


@pytest.mark.m3_t7
def test_wkv_recurrence_matches_the_formula(impl):
    w, u, k, v = wkv_inputs()
    out, _ = impl.wkv_recurrent(w, u, k, v)
    expected = naive_wkv(w.double(), u.double(), k.double(), v.double()).float()
    torch.testing.assert_close(out, expected, **TOL)


@pytest.mark.m3_t7
def test_wkv_recurrence_survives_huge_keys_and_carries_state(impl):
    w, u, k, v = wkv_inputs(scale=60.0)  # e^k overflows float32 beyond k = 88
    out, state = impl.wkv_recurrent(w, u, k, v)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, naive_wkv(w.double(), u.double(), k.double(), v.double()).float(), **TOL)
    first, mid = impl.wkv_recurrent(w, u, k[:, :11], v[:, :11])
    second, end = impl.wkv_recurrent(w, u, k[:, 11:], v[:, 11:], mid)
    torch.testing.assert_close(torch.cat([first, second], 1), out, **TOL)
    ref_out, ref_state = wkv_recurrent(w, u, k, v)
    for ours, theirs in zip(end, ref_state):  # the same state, in the reference's (num, den, p) form
        torch.testing.assert_close(ours, theirs, **TOL)


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_wkv_parallel_equals_recurrent(chunk):
    w, u, k, v = wkv_inputs(t=45, scale=30.0)
    start = wkv_recurrent(w, u, k[:, :5], v[:, :5])[1]  # a non-trivial incoming state
    out_r, state_r = wkv_recurrent(w, u, k[:, 5:], v[:, 5:], start)
    out_p, state_p = wkv_parallel(w, u, k[:, 5:], v[:, 5:], start, chunk_size=chunk)
    torch.testing.assert_close(out_p, out_r, **TOL)
    for a, b in zip(state_p, state_r):
        torch.testing.assert_close(a, b, **TOL)


def _streams_like_full_forward(model, vocab, length=50):
    idx = torch.randint(0, vocab, (2, length))
    with torch.no_grad():
        full, _ = model(idx)
        state = model.new_state(2)
        chunks = torch.cat([model(idx[:, a : a + 13], state=state)[0] for a in range(0, length, 13)], 1)
        size = state_nbytes(state)
        state = model.new_state(2)
        steps = torch.stack([model.step(idx[:, t], state) for t in range(length)], 1)
    torch.testing.assert_close(chunks, full, **TOL)
    torch.testing.assert_close(steps, full, **TOL)
    assert state_nbytes(state) == size
    return size


def test_rwkv_streams_like_its_full_forward():
    torch.manual_seed(0)
    model = RWKVLM(RWKVConfig(vocab_size=30, d_model=16, n_layer=2, chunk_size=8)).eval()
    size = _streams_like_full_forward(model, 30)
    assert size == 2 * 5 * 2 * 16 * 4  # 2 layers x 5 vectors (b=2, d=16) float32, whatever the length


def test_hybrid_layout_and_bounded_window_state():
    cfg = HybridConfig(vocab_size=30, d_model=16, n_layer=4, attn_every=2, n_head=2, window=6, d_state=4)
    torch.manual_seed(0)
    model = HybridLM(cfg).eval()
    assert [type(b) for b in model.backbone.layers] == [MambaBlock, AttentionBlock, MambaBlock, AttentionBlock]
    assert isinstance(model.backbone.layers[1].attn, MultiHeadAttention)  # month 1's attention, reused
    size = _streams_like_full_forward(model, 30)
    with torch.no_grad():
        state = model.new_state(2)
        model(torch.randint(0, 30, (2, 300)), state=state)
    assert state_nbytes(state) == size  # 5 keys + 5 values per attention layer, not 300
    assert state[1].k.shape == (2, 2, 5, 8)


def test_sliding_window_mask():
    mask = sliding_window_mask(3, 2, 3)  # 2 cached keys, 3 new queries, window 3
    expected = torch.tensor([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(mask, expected)
