"""Positional encodings: attention alone is blind to order, so we inject it.

- sinusoidal (Vaswani et al. 2017): fixed sin/cos of geometrically spaced frequencies, added to the input;
- learned: a trainable embedding per position (GPT-2), added to the input;
- RoPE (Su et al. 2021): rotate each (q, k) pair of channels by an angle proportional to
  the position, so q_m . k_n depends only on m - n. Applied inside attention. We use the
  "rotate half" channel pairing of GPT-NeoX and Hugging Face's LLaMA.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def sinusoidal_encoding(n_positions: int, d_model: int, base: float = 10000.0) -> Tensor:
    """(n_positions, d_model): PE[p, 2i] = sin(p / base^(2i/d)), PE[p, 2i+1] = cos(...)."""
    if d_model % 2:
        raise ValueError(f"d_model must be even, got {d_model}")
    position = torch.arange(n_positions, dtype=torch.float32)[:, None]
    inv_freq = base ** (-torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)
    pe = torch.zeros(n_positions, d_model)
    pe[:, 0::2] = torch.sin(position * inv_freq)
    pe[:, 1::2] = torch.cos(position * inv_freq)
    return pe


class LearnedPositionalEmbedding(nn.Module):
    def __init__(self, n_positions: int, d_model: int) -> None:
        super().__init__()
        self.n_positions = n_positions
        self.weight = nn.Parameter(torch.randn(n_positions, d_model) * 0.02)

    def forward(self, positions: Tensor) -> Tensor:
        if positions.max() >= self.n_positions:
            raise ValueError(f"position {int(positions.max())} >= block size {self.n_positions}")
        return self.weight[positions]


def rope_cache(positions: Tensor, head_dim: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """(cos, sin), each (len(positions), head_dim): angle p * base^(-2i/head_dim),
    repeated for the two halves that `rotate_half` pairs up."""
    if head_dim % 2:
        raise ValueError(f"head_dim must be even for RoPE, got {head_dim}")
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32, device=positions.device) / head_dim)
    angles = positions.float()[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def rotate_half(x: Tensor) -> Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x (..., T, head_dim) by the angles for its T positions."""
    return x * cos.to(x.dtype) + rotate_half(x) * sin.to(x.dtype)
