"""Graded (m2_t4): top-p (nucleus) filtering, against transformers' TopPLogitsWarper."""

import pytest
import torch
from transformers import TopPLogitsWarper


@pytest.mark.m2_t4
@pytest.mark.parametrize("p", [0.05, 0.3, 0.6, 0.9, 0.99])
def test_top_p_keeps_the_same_tokens_as_transformers(impl, p):
    torch.manual_seed(0)
    logits = torch.randn(8, 100) * 3
    ours = impl.top_p_filter(logits, p)
    theirs = TopPLogitsWarper(top_p=p)(torch.zeros(8, 1, dtype=torch.long), logits.clone())
    assert torch.equal(torch.isinf(ours), torch.isinf(theirs))
    kept = ~torch.isinf(ours)
    assert torch.equal(ours[kept], logits[kept]), "kept logits must keep their values"


@pytest.mark.m2_t4
def test_top_p_edge_cases(impl):
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    assert torch.isinf(impl.top_p_filter(logits, 1e-6)).tolist() == [[False, True, True, True]]  # top one stays
    probs = logits.softmax(-1)[0]  # 0.64, 0.24, 0.09, 0.03
    p = (probs[0] + probs[1]).item()
    # Exactly reaching p with two tokens: the third is dropped.
    assert torch.isinf(impl.top_p_filter(logits, p - 1e-4)).tolist() == [[False, False, True, True]]
    # Works on any leading shape, along the last dimension.
    batch = torch.randn(2, 3, 10)
    out = impl.top_p_filter(batch, 0.5)
    assert out.shape == batch.shape and torch.equal(out[1, 2], impl.top_p_filter(batch[1, 2], 0.5))
