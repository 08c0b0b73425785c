"""The reference side of month 3's graded exercises: the names a learner implements
(see tasks.py), exported from the real code. A learner's file exports the same names."""

from month3_mamba.model import MambaMixer, causal_depthwise_conv1d, mamba_step
from month3_mamba.rwkv import wkv_recurrent
from month3_mamba.scan import associative_scan, discretize, scan_chunked, scan_sequential
from month3_mamba.ssm import zoh_discretize

MONTH = "month3_mamba"

# The methods a learner writes in each graded class. The stub's class overrides exactly these and
# inherits the rest, its constructor included, from the reference class; a class whose __init__
# is graded is an nn.Module of the learner's own instead (tests/test_stub_structure.py).
GRADED_METHODS: dict[str, tuple[str, ...]] = {
    "MambaMixer": ("forward",),
}

__all__ = [
    "MambaMixer",
    "associative_scan",
    "causal_depthwise_conv1d",
    "discretize",
    "mamba_step",
    "scan_chunked",
    "scan_sequential",
    "wkv_recurrent",
    "zoh_discretize",
]
