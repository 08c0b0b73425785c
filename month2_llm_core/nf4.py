"""NF4 (4-bit NormalFloat, from QLoRA) from scratch (graded exercise 2.2).

Weights are cut into blocks of `blocksize` values. Each block is divided by its largest
absolute value (absmax), which puts it in [-1, 1]; each value is then replaced by the index of
the nearest of 16 fixed levels. The levels are quantiles of a normal distribution, so they are
dense near 0 where most weights are: for normally distributed weights each level is used about
equally often. Dequantizing is a table lookup times the block's absmax.

Storage: 4 bits per value (two codes per byte, the first in the high nibble, as bitsandbytes
packs them) plus one fp32 absmax per block: 4.5 bits per value at blocksize 64.
tests/test_nf4.py compares codes and values with bitsandbytes' quantize_4bit/dequantize_4bit.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# The 16 NF4 levels (Dettmers et al. 2023, appendix E), exact 0 included, asymmetric: 8 positive.
NF4_LEVELS = torch.tensor([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
])
ZERO_CODE = 7  # NF4_LEVELS[7] == 0.0


def nf4_quantize(x: Tensor, blocksize: int = 64) -> tuple[Tensor, Tensor]:
    """(codes, absmax): one uint8 code (0..15) per value of x flattened, one fp32 absmax per block.
    A last, shorter block is allowed."""
    flat = x.reshape(-1).float()
    n_blocks = math.ceil(flat.numel() / blocksize)
    padded = torch.nn.functional.pad(flat, (0, n_blocks * blocksize - flat.numel()))
    blocks = padded.view(n_blocks, blocksize)
    absmax = blocks.abs().amax(dim=1)
    scaled = (blocks / absmax.clamp(min=1e-38)[:, None]).clamp(-1, 1)
    # Nearest level; on an exact midpoint, the lower level (what bucketizing on midpoints gives).
    codes = (scaled.reshape(-1, 1) - NF4_LEVELS).abs().argmin(dim=1)
    return codes[: flat.numel()].to(torch.uint8), absmax


def nf4_dequantize(codes: Tensor, absmax: Tensor, shape: tuple[int, ...], blocksize: int = 64) -> Tensor:
    """Back to fp32 values of `shape`: level[code] * absmax of the code's block."""
    n = math.prod(shape)
    block_of = torch.arange(n) // blocksize
    return (NF4_LEVELS[codes.long()] * absmax[block_of]).reshape(shape)


def pack_nibbles(codes: Tensor) -> Tensor:
    """Two 4-bit codes per byte, the first in the high nibble (bitsandbytes' layout); an odd
    length is padded with the code of the value 0.0, as bitsandbytes pads."""
    c = codes.reshape(-1).to(torch.uint8)
    if c.numel() % 2:
        c = torch.cat([c, c.new_full((1,), ZERO_CODE)])
    return (c[0::2] << 4) | c[1::2]
