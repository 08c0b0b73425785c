"""The reference side of month 6's graded exercises: the names a learner implements
(see tasks.py), exported from the real code. A learner's file exports the same names."""

from month6_system.calculator import calculate
from month6_system.loop import run_tool_loop
from month6_system.protocol import check_chat_request
from month6_system.sse import sse_event, sse_stream

MONTH = "month6_system"

# Every graded name of month 6 is a function: no class methods to list.
GRADED_METHODS: dict[str, tuple[str, ...]] = {}

__all__ = ["calculate", "check_chat_request", "run_tool_loop", "sse_event", "sse_stream"]
