"""Graded: the pre-norm transformer block (m1_t6), against the reference block."""

import pytest
import torch

from month1_transformer.model import Block as ReferenceBlock
from month1_transformer.model import GPTConfig


@pytest.mark.m1_t6
@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
def test_block_matches_reference(impl, norm):
    cfg = GPTConfig(n_embd=32, n_head=4, norm=norm, fused_attention=False)
    torch.manual_seed(0)
    ref = ReferenceBlock(cfg).eval()
    ours = impl.Block(cfg).eval()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 10, 32)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-4)


@pytest.mark.m1_t6
def test_block_is_causal_and_residual(impl):
    cfg = GPTConfig(n_embd=16, n_head=2)
    torch.manual_seed(0)
    block = impl.Block(cfg).eval()
    x = torch.randn(1, 8, 16)
    y = block(x)
    x2 = x.clone()
    x2[:, 5:] += 1.0  # change the future
    torch.testing.assert_close(block(x2)[:, :5], y[:, :5], atol=1e-6, rtol=0)
    # Zero the branches' output projections: the block must become the identity (residual path).
    with torch.no_grad():
        for lin in (block.attn.out_proj, block.mlp.proj):
            lin.weight.zero_()
            lin.bias.zero_()
    torch.testing.assert_close(block(x), x)
