"""The reference side of month 4's graded exercises: the names a learner implements
(see tasks.py), exported from the real code. A learner's file exports the same names."""

from month4_moe.dispatch import dispatch_and_combine, expert_capacity
from month4_moe.gating import aux_free_bias_update, router_z_loss, switch_load_balancing_loss, top_k_gating
from month4_moe.layer import moe_forward

MONTH = "month4_moe"

# Every graded name of month 4 is a function: no class methods to list.
GRADED_METHODS: dict[str, tuple[str, ...]] = {}

__all__ = [
    "aux_free_bias_update",
    "dispatch_and_combine",
    "expert_capacity",
    "moe_forward",
    "router_z_loss",
    "switch_load_balancing_loss",
    "top_k_gating",
]
