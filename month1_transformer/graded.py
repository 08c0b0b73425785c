"""The reference side of month 1's graded exercises: the names a learner implements
(see tasks.py), exported from the real code. A learner's file exports the same names."""

from month1_transformer.attention import (
    MultiHeadAttention,
    causal_mask,
    scaled_dot_product_attention,
    softmax,
)
from month1_transformer.backprop import softmax_cross_entropy_forward_backward
from month1_transformer.model import Block
from month1_transformer.norm import LayerNorm, RMSNorm
from month1_transformer.positional import apply_rope, rope_cache, sinusoidal_encoding
from shared.training import train_step

MONTH = "month1_transformer"

# The methods a learner writes in each graded class. The stub's class overrides exactly these and
# inherits the rest, its constructor included, from the reference class; a class whose __init__
# is graded is an nn.Module of the learner's own instead (tests/test_stub_structure.py).
GRADED_METHODS: dict[str, tuple[str, ...]] = {
    "Block": ("forward",),
    "LayerNorm": ("forward",),
    "MultiHeadAttention": ("forward",),
    "RMSNorm": ("forward",),
}

__all__ = [
    "Block",
    "LayerNorm",
    "MultiHeadAttention",
    "RMSNorm",
    "apply_rope",
    "causal_mask",
    "rope_cache",
    "scaled_dot_product_attention",
    "sinusoidal_encoding",
    "softmax",
    "softmax_cross_entropy_forward_backward",
    "train_step",
]
