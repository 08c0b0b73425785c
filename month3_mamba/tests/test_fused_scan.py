"""The fused C++ scan (fused_scan.py) against the sequential loop: values, the last state and every
gradient, from zeros and from a state; and a Mamba model that streams with it."""

import pytest
import torch

from month3_mamba import fused_scan
from month3_mamba.model import MambaConfig, MambaLM
from month3_mamba.scan import selective_scan

pytestmark = pytest.mark.skipif(not fused_scan.available(), reason="the C++ extension does not build here")


@pytest.mark.parametrize("with_state", [False, True])
def test_fused_equals_sequential_values_and_gradients(with_state):
    g = torch.Generator().manual_seed(0)
    b, d, n, length = 2, 6, 5, 37
    inputs = {
        "u": torch.randn(b, d, length, generator=g), "delta": torch.randn(b, d, length, generator=g),
        "A": -torch.rand(d, n, generator=g) * 4, "B": torch.randn(b, n, length, generator=g),
        "C": torch.randn(b, n, length, generator=g), "D": torch.randn(d, generator=g),
        "z": torch.randn(b, d, length, generator=g), "delta_bias": torch.randn(d, generator=g),
        "initial_state": torch.randn(b, d, n, generator=g) if with_state else None,
    }
    results = {}
    for mode in ("sequential", "fused"):
        leaves = {k: v.clone().requires_grad_() for k, v in inputs.items() if v is not None}
        y, last = selective_scan(**leaves, delta_softplus=True, return_last_state=True, mode=mode)
        (y * torch.linspace(-1, 1, length)).sum().backward(retain_graph=True)
        (last ** 2).sum().backward()
        results[mode] = (y, last, {k: v.grad for k, v in leaves.items()})
    (y0, last0, g0), (y1, last1, g1) = results["sequential"], results["fused"]
    torch.testing.assert_close(y1, y0, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(last1, last0, rtol=1e-4, atol=1e-5)
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], rtol=1e-4, atol=1e-4, msg=name)


def test_model_with_fused_scan_streams_like_the_loop():
    torch.manual_seed(0)
    loop = MambaLM(MambaConfig(d_model=16, n_layer=2, d_state=4))
    fused = MambaLM(MambaConfig(d_model=16, n_layer=2, d_state=4, scan="fused"))
    fused.load_state_dict(loop.state_dict())
    idx = torch.randint(0, 256, (2, 50))
    with torch.no_grad():
        state = fused.new_state(2)
        streamed = torch.cat([fused(idx[:, :20], state=state)[0], fused(idx[:, 20:], state=state)[0]], 1)
        torch.testing.assert_close(streamed, loop(idx)[0], rtol=1e-4, atol=1e-5)
