"""Graded (m2_t2): NF4 quantize/dequantize from scratch, against bitsandbytes on CPU.

Stated tolerance: the same 4-bit codes (bit for bit, after packing two per byte as
bitsandbytes does), the same per-block absmax, dequantized values within 1e-6."""

import bitsandbytes.functional as bnbf
import pytest
import torch

from month2_llm_core.nf4 import pack_nibbles


def _bnb(x, blocksize):
    packed, state = bnbf.quantize_4bit(x, blocksize=blocksize, quant_type="nf4")
    return packed.reshape(-1), state


@pytest.mark.m2_t2
def test_levels_are_bitsandbytes_nf4_code(impl):
    code = bnbf.get_4bit_type("nf4", device="cpu")
    torch.testing.assert_close(impl.NF4_LEVELS.float(), code.float(), atol=0, rtol=0)


@pytest.mark.m2_t2
@pytest.mark.parametrize("shape,blocksize", [((256, 128), 64), ((96, 40), 64), ((33, 17), 128), ((4096,), 256)])
def test_same_codes_and_absmax_as_bitsandbytes(impl, shape, blocksize):
    torch.manual_seed(0)
    x = torch.randn(shape) * 0.02
    codes, absmax = impl.nf4_quantize(x, blocksize)
    assert codes.dtype == torch.uint8 and codes.numel() == x.numel() and int(codes.max()) <= 15
    packed, state = _bnb(x, blocksize)
    torch.testing.assert_close(absmax.float(), state.absmax.float(), atol=0, rtol=0)
    assert torch.equal(pack_nibbles(codes), packed), "codes differ from bitsandbytes'"


@pytest.mark.m2_t2
@pytest.mark.parametrize("shape,blocksize", [((256, 128), 64), ((96, 40), 64)])
def test_dequantized_values_match_bitsandbytes(impl, shape, blocksize):
    torch.manual_seed(1)
    x = torch.randn(shape)
    codes, absmax = impl.nf4_quantize(x, blocksize)
    ours = impl.nf4_dequantize(codes, absmax, tuple(x.shape), blocksize)
    packed, state = _bnb(x, blocksize)
    theirs = bnbf.dequantize_4bit(packed.reshape(-1, 1), state)
    assert ours.shape == x.shape
    torch.testing.assert_close(ours.float(), theirs.float(), atol=1e-6, rtol=1e-6)


@pytest.mark.m2_t2
def test_nf4_beats_uniform_4bit_on_normal_weights(impl):
    """Why NF4: for normally distributed weights its levels sit where the values are."""
    torch.manual_seed(2)
    x = torch.randn(512, 256)
    codes, absmax = impl.nf4_quantize(x, 64)
    nf4_err = (impl.nf4_dequantize(codes, absmax, tuple(x.shape), 64) - x).pow(2).mean()
    blocks = x.reshape(-1, 64)
    scale = blocks.abs().amax(1, keepdim=True) / 7  # uniform 4-bit: -7..7 (15 levels), same absmax
    uniform_err = (torch.round(blocks / scale) * scale - blocks).pow(2).mean()
    assert nf4_err < 0.85 * uniform_err
