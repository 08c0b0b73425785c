"""The tool-call task: natural requests -> one strict JSON tool call.

The month-6 assistant needs a model that answers "what time is it in Tokyo?" with
`{"name": "get_current_time", "arguments": {"timezone": "Asia/Tokyo"}}` and nothing
else. This module is everything about that task that does not need a model:

- `TOOLS`: the tool specs (name, description, JSON-schema parameters), the one place
  they are defined; `system_prompt()` lists them for the model, `openai_tools()` gives
  them in the OpenAI "tools" format for servers and templates that take it.
- `make_examples(split, n, seed)`: a deterministic generator of (request, call) pairs over the
  four built-in tools (the original task); `make_mixed_examples(split, n, seed)`: the extended
  task, where every example carries its own tool list (built-ins plus a pool of extra tools),
  calculator word problems, and requests that need no tool at all.
- **"No tool" answer:** when no listed tool fits, the model answers exactly `{"name": null}`
  (`NO_CALL_ANSWER`). `parse_tool_call` stays strict and returns None for it (it is not a call);
  `is_no_call(text)` recognises it, and `parse_answer(text)` tells the three cases apart:
  ("call", call), ("none", None) or ("invalid", None). Month 6 runs the call, answers in prose
  for "none", and treats "invalid" as no call too.
- `ToolSpec.from_openai(dict)` / `to_openai()`: a client's OpenAI "tools" entry <-> a spec, so a
  prompt can list the server tools plus a request's own tools (`build_prompt(tok, req, tools)`).
- `parse_tool_call(text)`: the strict parser; `extract_tool_call(text)`: a lenient one
  (first JSON object anywhere in the text), used only to give the base model every chance.
- `calls_equal`, `exact_match`: the score (name and arguments equal after parsing).
- `build_messages`, `build_prompt`, `build_training_text`: the chat-template prompts.

How the splits differ (so a held-out score measures generalisation, not recall):
every tool has request templates of its own for each split (`TEMPLATES[tool][split]`),
and the free-text slots (document-search topics, memory topics) come from disjoint
lists. Numbers (calculator operands, top_k) are drawn at random in both splits. Cities
for the time tool are a closed set shared by both splits (the tool accepts a fixed set
of IANA names; learning which name belongs to which city is the point); for that tool
only the phrasing is new in the held-out split. `test_toolcalls.py` checks all of this.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SPLITS = ("train", "heldout")


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)  # a JSON schema of type "object"

    def signature(self) -> str:
        """`name(arg: type, ...)`: the compact form the system prompt shows."""
        props = self.parameters.get("properties", {})
        args = ", ".join(f"{arg}: {schema['type']}" for arg, schema in props.items())
        return f"{self.name}({args})"

    @classmethod
    def from_openai(cls, tool: dict[str, Any]) -> ToolSpec:
        """A spec from an OpenAI chat-completions "tools" entry ({"type": "function", "function": {...}})
        or from the bare function object."""
        fn = tool.get("function", tool) if tool.get("type", "function") == "function" else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise ValueError(f"not an OpenAI function tool: {tool!r}")
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        return cls(fn["name"], fn.get("description", ""), params)

    def to_openai(self) -> dict[str, Any]:
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}


def _object(**props: tuple[str, str]) -> dict[str, Any]:
    """A JSON schema for an object whose every property (type, description) is required."""
    return {
        "type": "object",
        "properties": {name: {"type": tp, "description": desc} for name, (tp, desc) in props.items()},
        "required": list(props),
        "additionalProperties": False,
    }


DEFAULT_TOP_K = 5
TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "calculator",
        "evaluate arithmetic written with + - * / ** and parentheses",
        _object(expression=("string", "the expression, e.g. '12 * (3 + 4)'")),
    ),
    ToolSpec(
        "search_documents",
        f"search the user's documents for top_k results ({DEFAULT_TOP_K} if no number is given)",
        _object(query=("string", "what to search for"), top_k=("integer", "how many results to return")),
    ),
    ToolSpec(
        "recall_memory",
        "recall what the user said in an earlier conversation",
        _object(query=("string", "what to recall")),
    ),
    ToolSpec(
        "get_current_time",
        "the current time in an IANA timezone such as Europe/Paris",
        _object(timezone=("string", "IANA timezone name")),
    ),
)
TOOLS_BY_NAME = {tool.name: tool for tool in TOOLS}
NO_CALL_ANSWER = '{"name": null}'  # the whole answer when no listed tool fits


def system_prompt(tools: tuple[ToolSpec, ...] = TOOLS) -> str:
    """The system prompt: the answer format, one example, and one line per tool. Kept short
    because every training sequence carries it (its length is most of the step time)."""
    lines = [
        "Answer with one JSON tool call and nothing else, e.g.",
        '{"name": "calculator", "arguments": {"expression": "2 + 2"}}',
        f"If no tool fits, answer {NO_CALL_ANSWER}",
        "Tools:",
    ]
    lines += [f"- {tool.signature()}: {tool.description}" for tool in tools]
    return "\n".join(lines)


def openai_tools(tools: tuple[ToolSpec, ...] = TOOLS) -> list[dict[str, Any]]:
    """The specs in the OpenAI chat-completions "tools" format."""
    return [t.to_openai() for t in tools]


# ---------------------------------------------------------------- parsing and scoring


def _as_call(obj: Any) -> dict[str, Any] | None:
    if not isinstance(obj, dict) or set(obj) != {"name", "arguments"}:
        return None
    if not isinstance(obj["name"], str) or not isinstance(obj["arguments"], dict):
        return None
    return obj


def parse_tool_call(text: str) -> dict[str, Any] | None:
    """The strict parser: the whole text (surrounding whitespace aside) must be one JSON
    object with exactly the keys "name" (a string) and "arguments" (an object).
    No code fences, no prose, no trailing text. Returns the object, or None."""
    try:
        obj = json.loads(text.strip())
    except (json.JSONDecodeError, RecursionError):
        return None
    return _as_call(obj)


def is_no_call(text: str) -> bool:
    """True when the whole answer is the "no tool" answer `{"name": null}` (strict, like the parser)."""
    try:
        return json.loads(text.strip()) == {"name": None}
    except (json.JSONDecodeError, RecursionError):
        return False


def parse_answer(text: str) -> tuple[str, dict[str, Any] | None]:
    """("call", call), ("none", None) for the no-tool answer, or ("invalid", None)."""
    call = parse_tool_call(text)
    if call is not None:
        return "call", call
    return ("none", None) if is_no_call(text) else ("invalid", None)


def extract_tool_call(text: str) -> dict[str, Any] | None:
    """The lenient parser: the first JSON object anywhere in the text that has the call's
    shape (ignores prose and code fences around it). Only for reporting how close the
    base model came; the score that counts is the strict one."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            obj, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            obj = None
        if _as_call(obj) is not None:
            return obj
        start = text.find("{", start + 1)
    return None


def _canonical(obj: Any) -> str:
    # Sorted keys, and 3 != 3.0 != "3" (json writes them differently): type-strict equality.
    return json.dumps(obj, sort_keys=True, ensure_ascii=False)


def calls_equal(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Same tool name and same arguments (key order ignored, types must match)."""
    return a is not None and b is not None and _canonical(a) == _canonical(b)


def exact_match(predictions: list[str], targets: list[dict[str, Any]], strict: bool = True) -> float:
    """Fraction of predicted texts whose parsed call equals the target call."""
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
    parse = parse_tool_call if strict else extract_tool_call
    hits = sum(calls_equal(parse(text), target) for text, target in zip(predictions, targets))
    return hits / max(1, len(targets))


_JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict,
               "array": list}


def validate_call(call: dict[str, Any], tools: tuple[ToolSpec, ...] = TOOLS) -> list[str]:
    """Problems with a parsed call against the specs `tools` (unknown tool, missing, extra or
    mistyped arguments); [] when it can be executed."""
    tool = {t.name: t for t in tools}.get(call.get("name"))
    if tool is None:
        return [f"unknown tool {call.get('name')!r}"]
    props, args = tool.parameters["properties"], call.get("arguments", {})
    problems = [f"missing argument {k!r}" for k in tool.parameters["required"] if k not in args]
    problems += [f"unexpected argument {k!r}" for k in args if k not in props]
    for key, value in args.items():
        expected = _JSON_TYPES.get(props[key].get("type"), object) if key in props else object
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
            problems.append(f"argument {key!r} should be {props[key]['type']}, got {type(value).__name__}")
    return problems


# ---------------------------------------------------------------- the generator

# Request templates per tool and split; "{x}" slots are filled by the tool's slot sampler.
TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "calculator": {
        "train": (
            "What is {expr}?", "Calculate {expr}.", "Compute {expr}", "How much is {expr}?", "What's {expr}?",
            "Please work out {expr}.", "Can you calculate {expr} for me?", "I need the result of {expr}.",
            "Solve {expr}", "what does {expr} equal",
        ),
        "heldout": ("Quick maths: {expr}?", "Tell me what {expr} comes to.", "Could you figure out {expr}?"),
    },
    "search_documents": {
        "train": (
            "Find {k} documents about {q}.", "Search my documents for {q}.", "Look up {q} in my files.",
            "Show me the top {k} results for {q}.", "Which of my documents mention {q}?",
            "Search the knowledge base for {q} and give me {k} hits.", "Pull up documents on {q}.",
            "Get me {k} notes about {q}.", "search docs: {q}", "I need {k} files related to {q}.",
        ),
        "heldout": (
            "I'm looking for {k} documents that cover {q}.", "Dig through my files for anything on {q}.",
            "Retrieve {k} passages about {q}.",
        ),
    },
    "recall_memory": {
        "train": (
            "What did I tell you about {q}?", "Do you remember {q}?", "Remind me about {q}.",
            "What do you know about {q} from our earlier chats?", "Recall {q} for me.",
            "Have I mentioned {q} before?", "Check your memory for {q}.", "I told you about {q} once, what was it?",
            "Any notes on {q} from before?", "memory lookup: {q}",
        ),
        "heldout": (
            "Earlier I shared {q} with you - what was it again?", "Can you bring back what I said about {q}?",
            "Jog my memory about {q}.",
        ),
    },
    "get_current_time": {
        "train": (
            "What time is it in {city}?", "Tell me the current time in {city}.", "What's the local time in {city}?",
            "Current time in {city}, please.", "What's the time over in {city}?", "time in {city} now?",
            "Is it late in {city} right now?", "Give me the clock in {city}.",
            "Check the time in {city}.", "How late is it in {city}?",
        ),
        "heldout": (
            "I need to call someone in {city} - what time is it there?",
            "Do you know the time in {city} at the moment?", "Clock check: {city}.",
        ),
    },
}

DOCUMENT_TOPICS: dict[str, tuple[str, ...]] = {
    "train": (
        "the refund policy", "quarterly revenue", "the onboarding checklist", "GPU driver installation",
        "the vacation policy", "API rate limits", "database backups", "the security audit", "expense reports",
        "the product roadmap", "customer churn", "the hiring plan", "office parking", "the style guide",
        "password rotation", "the incident postmortem", "travel reimbursement", "the Q3 budget",
        "kubernetes deployment", "the data retention policy", "mamba state space models", "the release notes",
        "contract renewals", "the marketing plan", "unit testing guidelines", "the tax filing deadline",
        "supplier invoices", "the network diagram", "mixture of experts routing", "the board meeting minutes",
    ),
    "heldout": (
        "the holiday calendar", "server migration", "the code review checklist", "sales targets for Europe",
        "the laptop upgrade policy", "vector database indexing", "the annual report", "remote work rules",
        "the disaster recovery plan", "LoRA fine-tuning notes", "the printer setup", "team offsite logistics",
        "the pricing sheet", "phishing awareness training", "the warehouse inventory",
    ),
}
MEMORY_TOPICS: dict[str, tuple[str, ...]] = {
    "train": (
        "my sister's birthday", "my favourite restaurant", "the name of my dentist", "my flight number",
        "where I parked the car", "my daughter's allergy", "the wifi password", "my manager's name",
        "my gym schedule", "the book I wanted to read", "my shoe size", "my cat's vet appointment",
        "the gift idea for my mother", "my bank's phone number", "the movie we talked about", "my running goal",
        "my landlord's email", "the recipe I liked", "my coffee order", "the conference dates",
        "my doctor's advice", "the podcast you recommended", "my hotel booking", "my son's teacher",
        "the password hint", "my weekend plans", "the plumber's quote", "my brother's address",
        "my project deadline", "the song I was humming",
    ),
    "heldout": (
        "my anniversary date", "the restaurant my boss liked", "my train ticket number", "my wife's favourite flower",
        "the name of my neighbour's dog", "my insurance policy number", "the hiking trail I mentioned",
        "my blood type", "the birthday present for my nephew", "my car's licence plate",
        "the tea my aunt likes", "my piano lesson time", "the museum we wanted to visit", "my library card PIN",
        "the name of the babysitter",
    ),
}
CITIES: dict[str, str] = {
    "Tokyo": "Asia/Tokyo", "Paris": "Europe/Paris", "London": "Europe/London", "New York": "America/New_York",
    "Los Angeles": "America/Los_Angeles", "Sydney": "Australia/Sydney", "Berlin": "Europe/Berlin",
    "Mumbai": "Asia/Kolkata", "Sao Paulo": "America/Sao_Paulo", "Chicago": "America/Chicago",
    "Toronto": "America/Toronto", "Singapore": "Asia/Singapore", "Dubai": "Asia/Dubai", "Moscow": "Europe/Moscow",
    "Cairo": "Africa/Cairo", "Mexico City": "America/Mexico_City", "Seoul": "Asia/Seoul", "Madrid": "Europe/Madrid",
    "Nairobi": "Africa/Nairobi", "Beijing": "Asia/Shanghai", "San Francisco": "America/Los_Angeles",
    "Boston": "America/New_York", "UTC": "UTC",
}
NUMBER_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
OPERATORS = {"+": ("plus",), "-": ("minus",), "*": ("times", "multiplied by"), "/": ("divided by",)}


@dataclass(frozen=True)
class Example:
    request: str
    call: dict[str, Any] | None  # None: no listed tool fits
    template: str
    tools: tuple[ToolSpec, ...] = TOOLS  # the tools the prompt lists for this request

    @property
    def answer(self) -> str:
        """The exact text the model is trained to emit."""
        return NO_CALL_ANSWER if self.call is None else json.dumps(self.call, ensure_ascii=False)


def _number(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return f"{rng.randint(1, 99)}.{rng.randint(1, 9)}"
    return str(rng.randint(2, 999) if rng.random() < 0.7 else rng.randint(2, 20))


def _expression(rng: random.Random) -> tuple[str, str]:
    """(how the user says it, the canonical expression): operators said as words or as
    symbols, 2-3 operands, sometimes a square; the expression keeps the user's order."""
    symbolic = rng.random() < 0.3
    first = _number(rng)
    spoken, canonical = [first], [first]
    for _ in range(rng.choice((1, 1, 2))):
        op, num = rng.choice(tuple(OPERATORS)), _number(rng)
        spoken += [op if symbolic else rng.choice(OPERATORS[op]), num]
        canonical += [op, num]
    if not symbolic and rng.random() < 0.15:
        spoken.append("squared")
        canonical += ["**", "2"]
    return " ".join(spoken), " ".join(canonical)


def _top_k(rng: random.Random) -> tuple[str, int]:
    k = rng.randint(1, 10)
    return (NUMBER_WORDS[k - 1] if rng.random() < 0.4 else str(k)), k


def _sample(tool: str, split: str, rng: random.Random) -> Example:
    template = rng.choice(TEMPLATES[tool][split])
    if tool == "calculator":
        spoken, expr = _expression(rng)
        return Example(template.format(expr=spoken), {"name": tool, "arguments": {"expression": expr}}, template)
    if tool == "search_documents":
        query = rng.choice(DOCUMENT_TOPICS[split])
        k_text, k = _top_k(rng) if "{k}" in template else ("", DEFAULT_TOP_K)
        call = {"name": tool, "arguments": {"query": query, "top_k": k}}
        return Example(template.format(q=query, k=k_text), call, template)
    if tool == "recall_memory":
        query = rng.choice(MEMORY_TOPICS[split])
        return Example(template.format(q=query), {"name": tool, "arguments": {"query": query}}, template)
    if tool == "get_current_time":
        city = rng.choice(tuple(CITIES))
        return Example(template.format(city=city), {"name": tool, "arguments": {"timezone": CITIES[city]}}, template)
    raise KeyError(f"no generator for tool {tool!r}")


def draw_distinct(draw: Callable[[int], Example], n: int, split: str,
                  key: Callable[[Example], Any] = lambda e: e.request) -> list[Example]:
    """`n` examples of distinct `key`, `draw(i)` making a candidate for position i (both generators)."""
    examples: list[Example] = []
    seen: set = set()
    attempts = 0
    while len(examples) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ValueError(f"cannot draw {n} distinct {split} examples")
        example = draw(len(examples))
        if key(example) not in seen:
            seen.add(key(example))
            examples.append(example)
    return examples


def make_examples(split: str, n: int, seed: int = 0) -> list[Example]:
    """`n` distinct examples of `split` ("train" or "heldout"), the tools taking turns (so
    any prefix is balanced). The same (split, n, seed) always gives the same list, and a
    longer list starts with the shorter one."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = random.Random(f"toolcalls/{split}/{seed}")  # str seeds hash deterministically
    tools = [tool.name for tool in TOOLS]
    return draw_distinct(lambda i: _sample(tools[i % len(tools)], split, rng), n, split)


# ---------------------------------------------------------------- prompts


def build_messages(request: str, tools: tuple[ToolSpec, ...] = TOOLS) -> list[dict[str, str]]:
    return [{"role": "system", "content": system_prompt(tools)}, {"role": "user", "content": request}]


def build_prompt(tokenizer, request: str, tools: tuple[ToolSpec, ...] | list[ToolSpec] = TOOLS) -> str:
    """The chat-template text up to the start of the assistant's answer, listing `tools`
    (month 6: the server tools plus `ToolSpec.from_openai` of the client's tools)."""
    messages = build_messages(request, tuple(tools))
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def build_training_text(tokenizer, example: Example) -> tuple[str, str]:
    """(prompt, completion): the completion is the answer plus the end-of-turn token, so
    the model learns to stop right after the JSON. Both come from the chat template."""
    prompt = build_prompt(tokenizer, example.request, example.tools)
    full = tokenizer.apply_chat_template(
        [*build_messages(example.request, example.tools), {"role": "assistant", "content": example.answer}],
        tokenize=False,
    )
    if not full.startswith(prompt):
        raise ValueError("the chat template does not extend the generation prompt with the answer")
    end = full.index(tokenizer.eos_token, len(prompt)) + len(tokenizer.eos_token)
    return prompt, full[len(prompt) : end]
