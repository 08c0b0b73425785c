"""Month 6 graded tasks. `pytest month6_system -m m6_t2` grades one of them."""

from shared.grading import Task

TASKS = [
    Task("m6_t1", "the safe calculator", 15, ("calculate",),
         "ast.parse(expression, mode='eval'), then walk the tree yourself: numbers, + - * / // % ** (and ^ as "
         "**), unary +/-, pi and e, and calls of the math functions the stub lists, on positional arguments; "
         "anything else is a CalculatorError. Bound the size of exponents and results before computing them."),
    Task("m6_t2", "the tool loop", 10, ("run_tool_loop",),
         "Loop while fewer than max_steps runs: ask the policy; None -> answer; registry.validate problems -> "
         "invalid_call; a call seen before -> repeated_call; a client tool -> client_tool (not run); else "
         "registry.execute, append, on_run(run)."),
    Task("m6_t3", "the SSE encoder", 5, ("sse_event", "sse_stream"),
         "'data: ' + compact JSON + a blank line per event (json.dumps never writes a raw newline); then "
         "'data: [DONE]' and a blank line, even after no events."),
    Task("m6_t4", "an OpenAI request validator", 10, ("check_chat_request",),
         "Unique tool names; a named tool_choice must be a listed tool; 'required' needs a tool; stream_options "
         "only with stream; each assistant tool_calls id answered by the tool messages right after it, and no "
         "tool message without one. Raise APIError(400, ..., param=...)."),
]
