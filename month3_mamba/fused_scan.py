"""The selective scan as one C++ loop per channel, forward and backward: the CPU's answer to mamba-ssm's kernel.

`scan_sequential` (scan.py) materialises dA and dBu, (l, b, d, n) each, and steps through them with
a few whole-tensor ops per token, whose backward autograd records step by step: on one CPU thread the
time goes to memory traffic and per-op overhead, and it grows with d_state. Here each (batch, channel)
keeps its n-vector state in cache and walks the sequence once:

    forward   h = exp(delta_t A) * h + delta_t B_t u_t;  y_t = C_t . h      (h_t kept only when training)
    backward  from t = l - 1 down: g_h += C_t gy_t, then the gradients of u_t, delta_t, A, B_t, C_t,
              and g_h *= exp(delta_t A) for the step before

Same maths and contract as `selective_scan(..., mode="sequential")` (D, z, bias and softplus stay in
torch); `month3_mamba/tests/test_fused_scan.py` checks values and gradients against it. The extension
is compiled on first use with torch's `cpp_extension.load_inline` (about a minute, then cached); where
no C++ compiler works, `available()` is false and mode "fused" falls back to the sequential loop.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import torch
from torch import Tensor

SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cmath>
#include <vector>

// u, delta: (b, d, l); A: (d, n); B, C: (b, l, n); h0: (b, d, n). Returns y (b, d, l), h_last (b, d, n)
// and, if keep, every state hs (b, d, l, n) for the backward.
std::vector<torch::Tensor> scan_forward(torch::Tensor u, torch::Tensor delta, torch::Tensor A, torch::Tensor B,
                                        torch::Tensor C, torch::Tensor h0, bool keep) {
  const int64_t nb = u.size(0), nd = u.size(1), nl = u.size(2), nn = A.size(1);
  auto y = torch::empty({nb, nd, nl}, u.options());
  auto last = torch::empty({nb, nd, nn}, u.options());
  auto hs = keep ? torch::empty({nb, nd, nl, nn}, u.options()) : torch::empty({0}, u.options());
  const float *pu = u.data_ptr<float>(), *pdt = delta.data_ptr<float>(), *pA = A.data_ptr<float>();
  const float *pB = B.data_ptr<float>(), *pC = C.data_ptr<float>(), *ph0 = h0.data_ptr<float>();
  float *py = y.data_ptr<float>(), *plast = last.data_ptr<float>(), *phs = keep ? hs.data_ptr<float>() : nullptr;
  at::parallel_for(0, nb * nd, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> h(nn);
    for (int64_t bd = begin; bd < end; ++bd) {
      const int64_t b = bd / nd, d = bd % nd;
      for (int64_t k = 0; k < nn; ++k) h[k] = ph0[bd * nn + k];
      const float *a = pA + d * nn;
      for (int64_t t = 0; t < nl; ++t) {
        const float dt = pdt[bd * nl + t], x = dt * pu[bd * nl + t];
        const float *bt = pB + (b * nl + t) * nn, *ct = pC + (b * nl + t) * nn;
        float acc = 0.f;
        for (int64_t k = 0; k < nn; ++k) {
          h[k] = std::exp(dt * a[k]) * h[k] + x * bt[k];
          acc += ct[k] * h[k];
        }
        py[bd * nl + t] = acc;
        if (keep) std::copy(h.begin(), h.end(), phs + (bd * nl + t) * nn);
      }
      std::copy(h.begin(), h.end(), plast + bd * nn);
    }
  });
  return {y, last, hs};
}

// Gradients of scan_forward's y and h_last, given gy (b, d, l), glast (b, d, n) and the kept states.
std::vector<torch::Tensor> scan_backward(torch::Tensor u, torch::Tensor delta, torch::Tensor A, torch::Tensor B,
                                         torch::Tensor C, torch::Tensor h0, torch::Tensor hs, torch::Tensor gy,
                                         torch::Tensor glast) {
  const int64_t nb = u.size(0), nd = u.size(1), nl = u.size(2), nn = A.size(1);
  auto gu = torch::empty_like(u), gdelta = torch::empty_like(delta), gh0 = torch::empty_like(h0);
  auto gA = torch::zeros({nb, nd, nn}, u.options());  // per batch row, summed after: no two threads share a row
  auto gB = torch::zeros_like(B), gC = torch::zeros_like(C);
  const float *pu = u.data_ptr<float>(), *pdt = delta.data_ptr<float>(), *pA = A.data_ptr<float>();
  const float *pB = B.data_ptr<float>(), *pC = C.data_ptr<float>(), *ph0 = h0.data_ptr<float>();
  const float *phs = hs.data_ptr<float>(), *pgy = gy.data_ptr<float>(), *pgl = glast.data_ptr<float>();
  float *pgu = gu.data_ptr<float>(), *pgdt = gdelta.data_ptr<float>(), *pgh0 = gh0.data_ptr<float>();
  float *pgA = gA.data_ptr<float>(), *pgB = gB.data_ptr<float>(), *pgC = gC.data_ptr<float>();
  at::parallel_for(0, nb, 1, [&](int64_t begin, int64_t end) {  // batch rows: gB, gC, gA rows are private
    std::vector<float> g(nn);
    for (int64_t b = begin; b < end; ++b) {
      for (int64_t d = 0; d < nd; ++d) {
        const int64_t bd = b * nd + d;
        const float *a = pA + d * nn;
        float *ga = pgA + bd * nn;
        for (int64_t k = 0; k < nn; ++k) g[k] = pgl[bd * nn + k];
        for (int64_t t = nl - 1; t >= 0; --t) {
          const float dt = pdt[bd * nl + t], ut = pu[bd * nl + t], gyt = pgy[bd * nl + t];
          const float *bt = pB + (b * nl + t) * nn, *ct = pC + (b * nl + t) * nn;
          float *gbt = pgB + (b * nl + t) * nn, *gct = pgC + (b * nl + t) * nn;
          const float *ht = phs + (bd * nl + t) * nn;
          const float *hp = t > 0 ? phs + (bd * nl + t - 1) * nn : ph0 + bd * nn;
          float gdt = 0.f, gx = 0.f;
          for (int64_t k = 0; k < nn; ++k) {
            g[k] += ct[k] * gyt;                      // dL/dh_t
            gct[k] += gyt * ht[k];
            const float da = std::exp(dt * a[k]);
            const float gda = g[k] * hp[k] * da;      // through exp(dt a): d/d(dt a)
            gdt += gda * a[k];
            ga[k] += gda * dt;
            gx += g[k] * bt[k];                       // x = dt u multiplies B
            gbt[k] += g[k] * dt * ut;
            g[k] *= da;                               // on to h_{t-1}
          }
          pgdt[bd * nl + t] = gdt + gx * ut;
          pgu[bd * nl + t] = gx * dt;
        }
        for (int64_t k = 0; k < nn; ++k) pgh0[bd * nn + k] = g[k];
      }
    }
  });
  return {gu, gdelta, gA.sum(0), gB, gC, gh0};
}
"""


@lru_cache(maxsize=1)
def _extension():
    from torch.utils.cpp_extension import load_inline

    return load_inline("month3_fused_scan", cpp_sources=SOURCE, functions=["scan_forward", "scan_backward"],
                       extra_cflags=["-O3"], verbose=False)


@lru_cache(maxsize=1)
def available() -> bool:
    """Whether the extension builds (or is already built) here."""
    try:
        _extension()
    except Exception as err:  # no compiler, no headers, a failed build: the sequential loop does the same maths
        warnings.warn(f"month3_mamba fused scan unavailable ({type(err).__name__}); using the sequential scan",
                      stacklevel=2)
        return False
    return True


class FusedScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, h0):
        keep = any(ctx.needs_input_grad)
        y, last, hs = _extension().scan_forward(u, delta, A, B, C, h0, keep)
        if keep:
            ctx.save_for_backward(u, delta, A, B, C, h0, hs)
        return y, last

    @staticmethod
    def backward(ctx, gy, glast):
        u, delta, A, B, C, h0, hs = ctx.saved_tensors
        gy = torch.zeros_like(u) if gy is None else gy.contiguous()
        glast = torch.zeros_like(h0) if glast is None else glast.contiguous()
        return tuple(_extension().scan_backward(u, delta, A, B, C, h0, hs, gy, glast))


def fused_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, h0: Tensor | None = None
               ) -> tuple[Tensor, Tensor]:
    """y (b, d, l) = C . h and h_last (b, d, n) of h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t; float32.

    u, delta: (b, d, l) (delta after its bias and softplus); A: (d, n); B, C: (b, n, l) as selective_scan takes them."""
    b, d, _ = u.shape
    h0 = u.new_zeros(b, d, A.size(1)) if h0 is None else h0
    return FusedScan.apply(u.contiguous(), delta.contiguous(), A.contiguous(), B.transpose(1, 2).contiguous(),
                           C.transpose(1, 2).contiguous(), h0.contiguous())
