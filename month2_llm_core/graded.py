"""The reference side of month 2's graded exercises: the names a learner implements
(see tasks.py), exported from the real code. A learner's file exports the same names."""

from month1_transformer.sampling import top_p_filter
from month2_llm_core.inference import greedy_decode
from month2_llm_core.lora import LoRALinear
from month2_llm_core.nf4 import NF4_LEVELS, nf4_dequantize, nf4_quantize
from month2_llm_core.tokenization import SMOLLM2_DEFAULT_SYSTEM, apply_chatml

MONTH = "month2_llm_core"

# The methods a learner writes in each graded class. The stub's class overrides exactly these and
# inherits the rest, its constructor included, from the reference class; a class whose __init__
# is graded is an nn.Module of the learner's own instead (tests/test_stub_structure.py).
GRADED_METHODS: dict[str, tuple[str, ...]] = {
    "LoRALinear": ("__init__", "forward", "merge"),  # building the layers is part of Task 2.1
}

__all__ = [
    "NF4_LEVELS",
    "SMOLLM2_DEFAULT_SYSTEM",
    "LoRALinear",
    "apply_chatml",
    "greedy_decode",
    "nf4_dequantize",
    "nf4_quantize",
    "top_p_filter",
]
