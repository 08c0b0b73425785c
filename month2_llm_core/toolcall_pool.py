"""The extended tool-call task: a tool list per request, unseen tools, word problems, and "no tool".

`make_mixed_examples(split, n, seed)` draws examples whose prompt lists their own tools: the
four built-ins and/or tools from a pool, shuffled, 2-5 per request. The pools are disjoint:
`TRAIN_TOOLS` appear only in the training split, `HELDOUT_TOOLS` (unit conversion, weather,
e-mail, calendar, translation) only in the held-out split, so a held-out call to one of them
measures reading a spec never seen in training. Every kind of example has its own request
templates per split, and the free-text slots come from per-split lists, like `toolcalls`.

Kinds, taking turns: the four built-ins, a calculator word problem ("15 percent of 240" ->
`240*15/100`, "minutes in 7 hours" -> `7*60`: the arithmetic written out), a pool tool, and two
"no tool" kinds: a request no tool fits (a haiku, a greeting, "explain recursion"), and a
built-in request whose tool is not in this prompt's list. Both answer `{"name": null}`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from month2_llm_core.toolcalls import (
    SPLITS,
    TOOLS,
    TOOLS_BY_NAME,
    Example,
    ToolSpec,
    _object,
    _sample,
    draw_distinct,
)

Slots = dict[str, Any]
# A pool tool: its spec, request templates per split, and a sampler of (template slots, arguments).
PoolTool = tuple[ToolSpec, dict[str, tuple[str, ...]], Callable[[str, random.Random], tuple[Slots, Slots]]]


def _pick(options: dict[str, tuple[str, ...]]) -> Callable[[str, random.Random], str]:
    return lambda split, rng: rng.choice(options[split])


_SONGS = {"train": ("Bohemian Rhapsody", "Hey Jude", "Clair de Lune", "Take Five", "Yesterday", "Imagine",
                    "Dancing Queen", "Hotel California", "Wonderwall", "Africa")}
_NOTES = {"train": ("buy milk", "call the bank", "renew my passport", "water the plants", "book the dentist",
                    "pay the electricity bill", "pick up the dry cleaning", "email the landlord")}
_SYMBOLS = {"train": ("AAPL", "MSFT", "TSLA", "NVDA", "AMZN", "GOOG", "IBM", "INTC")}
_PLACES = {"train": ("the airport", "the central station", "the office", "the city hall", "the museum",
                     "the hotel", "the stadium")}
_DUE = {"train": ("tomorrow", "Friday", "next Monday", "tonight", "the weekend")}


TRAIN_TOOLS: tuple[PoolTool, ...] = (
    (ToolSpec("set_timer", "start a countdown timer", _object(minutes=("integer", "length of the timer"))),
     {"train": ("Set a timer for {m} minutes.", "Start a {m} minute timer.", "timer {m} min please",
                "Count down {m} minutes for me.")},
     lambda split, rng: (lambda m: ({"m": m}, {"minutes": m}))(rng.randint(1, 90))),
    (ToolSpec("play_music", "play a song on the speaker", _object(song=("string", "the song title"))),
     {"train": ("Play {s}.", "Put on {s}, please.", "I want to hear {s}.", "Can you play {s} for me?")},
     lambda split, rng: (lambda s: ({"s": s}, {"song": s}))(_pick(_SONGS)(split, rng))),
    (ToolSpec("add_todo", "add a task to the to-do list", _object(task=("string", "the task"),
                                                                   due=("string", "when it is due"))),
     {"train": ("Add {t} to my to-do list for {d}.", "Put '{t}' on my todo list, due {d}.",
                "New task: {t}, due {d}.", "I have to {t} by {d}, add it to my tasks.")},
     lambda split, rng: (lambda t, d: ({"t": t, "d": d}, {"task": t, "due": d}))(
         _pick(_NOTES)(split, rng), _pick(_DUE)(split, rng))),
    (ToolSpec("get_stock_price", "the latest price of a stock ticker", _object(symbol=("string", "ticker"))),
     {"train": ("What is {x} trading at?", "Stock price of {x}?", "How much is one {x} share right now?",
                "Quote {x} for me.")},
     lambda split, rng: (lambda x: ({"x": x}, {"symbol": x}))(_pick(_SYMBOLS)(split, rng))),
    (ToolSpec("book_taxi", "order a taxi to a destination", _object(destination=("string", "where to go"))),
     {"train": ("Get me a taxi to {p}.", "Book a cab to {p}.", "I need a ride to {p}.", "Order a taxi to {p}.")},
     lambda split, rng: (lambda p: ({"p": p}, {"destination": p}))(_pick(_PLACES)(split, rng))),
)

_CITIES = ("Paris", "Lisbon", "Oslo", "Tokyo", "Lima", "Cairo", "Denver", "Rome", "Vienna", "Hanoi")
_UNITS = (("miles", "kilometers"), ("kilograms", "pounds"), ("liters", "gallons"), ("feet", "meters"),
          ("celsius", "fahrenheit"), ("inches", "centimeters"))
_PEOPLE = ("anna@example.com", "bob@example.com", "li.wei@example.org", "sam@company.io", "team@example.com")
_SUBJECTS = ("the budget review", "lunch on Friday", "the new contract", "holiday plans", "the server outage")
_EVENTS = ("team standup", "dentist appointment", "project kickoff", "yoga class", "budget meeting")
_DATES = ("2026-01-15", "2026-03-02", "2026-05-20", "2026-07-04", "2026-11-30")
_PHRASES = ("good morning", "where is the station", "thank you very much", "see you tomorrow", "I am hungry")
_LANGUAGES = ("Spanish", "French", "German", "Japanese", "Italian")

HELDOUT_TOOLS: tuple[PoolTool, ...] = (
    (ToolSpec("convert_units", "convert a quantity from one unit to another",
              _object(value=("number", "the quantity"), from_unit=("string", "unit to convert from"),
                      to_unit=("string", "unit to convert to"))),
     {"heldout": ("Convert {v} {a} to {b}.", "How many {b} is {v} {a}?", "{v} {a} in {b}, please.")},
     lambda split, rng: (lambda v, u: ({"v": v, "a": u[0], "b": u[1]},
                                       {"value": v, "from_unit": u[0], "to_unit": u[1]}))(
         rng.randint(2, 500), rng.choice(_UNITS))),
    (ToolSpec("get_weather", "the current weather in a city", _object(city=("string", "the city name"))),
     {"heldout": ("What's the weather like in {c}?", "Is it raining in {c}?", "Weather forecast for {c}?")},
     lambda split, rng: (lambda c: ({"c": c}, {"city": c}))(rng.choice(_CITIES))),
    (ToolSpec("send_email", "send an e-mail", _object(to=("string", "recipient address"),
                                                      subject=("string", "subject line"))),
     {"heldout": ("Send an email to {t} about {s}.", "Email {t} with the subject {s}.",
                  "Write to {t} regarding {s}.")},
     lambda split, rng: (lambda t, s: ({"t": t, "s": s}, {"to": t, "subject": s}))(
         rng.choice(_PEOPLE), rng.choice(_SUBJECTS))),
    (ToolSpec("create_calendar_event", "add an event to the calendar",
              _object(title=("string", "event title"), date=("string", "date, YYYY-MM-DD"))),
     {"heldout": ("Put {e} on my calendar for {d}.", "Schedule a {e} on {d}.", "Add {e} to the calendar on {d}.")},
     lambda split, rng: (lambda e, d: ({"e": e, "d": d}, {"title": e, "date": d}))(
         rng.choice(_EVENTS), rng.choice(_DATES))),
    (ToolSpec("translate_text", "translate text into another language",
              _object(text=("string", "the text"), target_language=("string", "language to translate into"))),
     {"heldout": ("Translate '{p}' into {l}.", "How do you say '{p}' in {l}?", "'{p}' in {l}, please.")},
     lambda split, rng: (lambda p, lang: ({"p": p, "l": lang}, {"text": p, "target_language": lang}))(
         rng.choice(_PHRASES), rng.choice(_LANGUAGES))),
)
POOLS: dict[str, tuple[PoolTool, ...]] = {"train": TRAIN_TOOLS, "heldout": HELDOUT_TOOLS}
POOL_SPECS = {spec.name: spec for spec, _, _ in TRAIN_TOOLS + HELDOUT_TOOLS}

# Word problems: (template, expression) pairs; the expression is the arithmetic written out.
WORD_PROBLEMS: dict[str, tuple[tuple[str, str], ...]] = {
    "train": (
        ("What is {a} percent of {b}?", "{b}*{a}/100"), ("{a}% of {b}?", "{b}*{a}/100"),
        ("How many minutes are in {a} hours?", "{a}*60"), ("How many seconds are in {a} minutes?", "{a}*60"),
        ("How many hours are in {a} days?", "{a}*24"), ("How many days are in {a} weeks?", "{a}*7"),
        ("Split {b} dollars evenly between {a} people.", "{b}/{a}"),
        ("{a} boxes with {b} apples each: how many apples?", "{a}*{b}"),
    ),
    "heldout": (
        ("Work out {a} percent of {b}.", "{b}*{a}/100"), ("Minutes in {a} hours?", "{a}*60"),
        ("If a day has 24 hours, how many hours do {a} days have?", "{a}*24"),
        ("Share {b} euros among {a} friends equally.", "{b}/{a}"),
    ),
}

# Requests that no tool fits: templates x subjects, per split.
NO_TOOL: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "train": (
        ("Write a poem about {x}.", "Tell me a joke about {x}.", "Explain {x} in simple terms.",
         "Give me three tips about {x}.", "What do you think about {x}?", "Write a short story about {x}."),
        ("the sea", "friendship", "photosynthesis", "cats", "gravity", "coffee", "winter mornings",
         "black holes", "learning to cook", "the moon", "democracy", "running a marathon", "volcanoes",
         "jazz", "the roman empire", "climate change", "pizza", "spring flowers", "machine learning",
         "a lost umbrella"),
    ),
    "heldout": (
        ("Write me a haiku about {x}.", "Could you describe {x} to a child?", "Explain {x}.",
         "I'd love a limerick on {x}."),
        ("autumn", "recursion", "the ocean at night", "rainbows", "inflation", "dinosaurs"),
    ),
}
# The user telling a fact: the assistant remembers every message anyway, so no tool fits (month 6).
STATEMENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "train": (
        ("My {k} is {v}.", "Remember that my {k} is {v}.", "Note: my {k} is {v}.", "For the record, my {k} is {v}."),
        ("badge number", "locker code", "employee id", "manager's name", "car plate", "team name", "home city"),
        ("K7Q2X", "4471", "Dana Ortiz", "B-204", "blue falcon", "Lisbon", "88-QX-12", "Marek"),
    ),
    "heldout": (
        ("I should tell you that my {k} is {v}.", "FYI, my {k} is {v}", "Just so you know: my {k} is {v}."),
        ("desk number", "cat's name", "project code", "dentist"),
        ("C-17", "Miso", "ORION-5", "Dr. Hale"),
    ),
}
GREETINGS: dict[str, tuple[str, ...]] = {
    "train": ("hello!", "hey there", "good morning", "thanks a lot", "who are you?", "bye for now"),
    "heldout": ("hi, how are you?", "what's up?", "nice to meet you", "thank you, that helps"),
}


def _tool_list(rng: random.Random, split: str, must: ToolSpec | None, exclude: str | None) -> tuple[ToolSpec, ...]:
    """`must` (if any) plus 1-4 distractors from the built-ins and the split's pool, shuffled;
    `exclude` never appears (the "tool not listed" kind)."""
    others = [t for t in TOOLS + tuple(s for s, _, _ in POOLS[split]) if t != must and t.name != exclude]
    chosen = rng.sample(others, rng.randint(1, 4)) + ([must] if must else [])
    rng.shuffle(chosen)
    return tuple(chosen)


KINDS = ("calculator", "search_documents", "recall_memory", "get_current_time", "word_problem",
         "pool", "pool", "no_tool", "not_listed")


def _draw(kind: str, split: str, rng: random.Random) -> Example:
    if kind in TOOLS_BY_NAME:
        e = _sample(kind, split, rng)
        return Example(e.request, e.call, e.template, _tool_list(rng, split, TOOLS_BY_NAME[kind], None))
    if kind == "word_problem":
        template, expr = rng.choice(WORD_PROBLEMS[split])
        a, b = rng.randint(2, 60), rng.randint(2, 50) * 10
        call = {"name": "calculator", "arguments": {"expression": expr.format(a=a, b=b)}}
        return Example(template.format(a=a, b=b), call, template, _tool_list(rng, split, TOOLS[0], None))
    if kind == "pool":
        spec, templates, sampler = rng.choice(POOLS[split])
        template = rng.choice(templates[split])
        slots, args = sampler(split, rng)
        call = {"name": spec.name, "arguments": args}
        return Example(template.format(**slots), call, template, _tool_list(rng, split, spec, None))
    if kind == "no_tool":
        templates, subjects = NO_TOOL[split]
        draw = rng.random()
        if draw < 0.3:
            request = rng.choice(GREETINGS[split])
            return Example(request, None, request, _tool_list(rng, split, None, None))
        if draw < 0.55:
            templates, keys, values = STATEMENTS[split]
            template = rng.choice(templates)
            request = template.format(k=rng.choice(keys), v=rng.choice(values))
            return Example(request, None, template, _tool_list(rng, split, None, None))
        template = rng.choice(templates)
        return Example(template.format(x=rng.choice(subjects)), None, template, _tool_list(rng, split, None, None))
    if kind == "not_listed":  # a built-in request, but its tool is missing from this prompt
        e = _sample(rng.choice(tuple(TOOLS_BY_NAME)), split, rng)
        return Example(e.request, None, e.template, _tool_list(rng, split, None, e.call["name"]))
    raise KeyError(f"no generator for kind {kind!r}")


def make_mixed_examples(split: str, n: int, seed: int = 0) -> list[Example]:
    """`n` distinct examples of `split`, the kinds of `KINDS` taking turns; deterministic, and a
    longer list starts with the shorter one."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = random.Random(f"toolcalls-mixed/{split}/{seed}")
    return draw_distinct(lambda i: _draw(KINDS[i % len(KINDS)], split, rng), n, split,
                         key=lambda e: (e.request, e.answer))


TRAINED_TOOL_NAMES = frozenset(TOOLS_BY_NAME) | {spec.name for spec, _, _ in TRAIN_TOOLS}


def example_kind(example: Example) -> str:
    """For reports: "no tool", "built-in", "training pool tool", or "unseen tool" (any tool that no
    training example calls or lists: the held-out pool, or a client's tool)."""
    if example.call is None:
        return "no tool"
    name = example.call["name"]
    if name in TOOLS_BY_NAME:
        return "built-in"
    return "training pool tool" if name in TRAINED_TOOL_NAMES else "unseen tool"


SECOND_SET = Path(__file__).resolve().parent / "eval_sets" / "toolcalls_second.jsonl"


def load_eval_set(path: str | Path = SECOND_SET) -> list[Example]:
    """Examples from a JSONL file, one {"request", "tools", "call"} object a line: "tools" lists
    tool names (the built-ins and the pools) or OpenAI "tools" entries; "call" is null for no tool."""
    examples = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        try:
            tools = tuple(ToolSpec.from_openai(t) if isinstance(t, dict) else {**TOOLS_BY_NAME, **POOL_SPECS}[t]
                          for t in row["tools"])
        except KeyError as err:
            raise ValueError(f"{path}:{number}: unknown tool {err}") from None
        examples.append(Example(row["request"], row["call"], f"{Path(path).name}:{number}", tools))
    return examples
