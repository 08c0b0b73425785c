"""Four expert LoRA adapters on SmolLM2 (Code, Math, Text, Chat), their data, and the mixture month 6 calls.

    from month4_moe.experts import MixtureOfAdapters
    moa = MixtureOfAdapters.load()                 # SmolLM2 once + the four committed adapters resident
    moa.route_and_generate("What is 37 + 48?")     # RoutedAnswer(expert='math', probability=1.0, answer=...)
    backend = moa.backend("code")                  # a month2_llm_core.chat.Backend on the shared base

Domain data (every example is a chat: `Pair(messages, answer)`, trained with the loss on the answer only;
each domain has a "train" and a "heldout" split that differ in what a held-out score must not recall):
- **math**: generated arithmetic and word problems, answered `37 + 48 = 85. The answer is 85.`; the held-out
  split has its own phrasings, and `math_second_set` is written by a different generator (stories). Scored by
  exact answers (`last_number(answer) == truth`, greedy).
- **code**: real functions with docstrings from Python's standard library; prompt = signature + docstring,
  answer = the whole function in a fenced block. Held-out functions come from other modules. Scored by the loss
  on the answer tokens.
- **text**: paragraphs of the Python documentation's prose (`pydoc_data.topics`): fix planted spelling mistakes,
  or continue a paragraph. Held-out paragraphs come from other topics. Scored by loss.
- **chat**: generated one- and two-turn small talk (greetings, feelings, recommendations, tips, thanks) with a
  consistent friendly style; the held-out split has its own phrasings and topics. Scored by loss.
"""

from __future__ import annotations

import ast
import random
import re
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from month2_llm_core.chat import Message, Sampling

DOMAINS = ("code", "math", "text", "chat")
GENERAL = "general"  # the base model with no adapter: the router's fallback
SPLITS = ("train", "heldout")
ADAPTERS_DIR = Path(__file__).resolve().parent / "adapters"  # committed: one folder per domain, and router/


@dataclass(frozen=True)
class Pair:
    """One training or evaluation example: a conversation ending with a user turn, and the answer."""

    messages: tuple[tuple[str, str], ...]  # (role, content), hashable so splits can be de-duplicated
    answer: str
    domain: str
    truth: str = ""  # math: the exact number the answer must end with

    def chat(self) -> list[Message]:
        return [{"role": role, "content": content} for role, content in self.messages]


def user(text: str, answer: str, domain: str, truth: str = "") -> Pair:
    return Pair((("user", text),), answer, domain, truth)


def _split_of(key: str, heldout_every: int = 5) -> str:
    """A stable split for a named source (a module, a doc topic): about one in `heldout_every` is held out."""
    return "heldout" if zlib.crc32(key.encode()) % heldout_every == 0 else "train"


def _distinct(make, n: int, what: str) -> list[Pair]:
    """`n` distinct pairs from `make()` (a seeded sampler), in order; a longer list starts with a shorter one."""
    pairs: list[Pair] = []
    seen: set[tuple] = set()
    for _ in range(50 * n + 1000):
        if len(pairs) == n:
            return pairs
        pair = make()
        if pair.messages not in seen:
            seen.add(pair.messages)
            pairs.append(pair)
    raise ValueError(f"cannot draw {n} distinct {what} examples")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


# ---------------------------------------------------------------- math

MATH_TEMPLATES = {  # how a bare calculation is asked, per split; {a} {op} {b} spoken or symbolic
    "train": ("What is {a} {sym} {b}?", "Calculate {a} {sym} {b}.", "{a} {sym} {b} = ?", "Compute {a} {word} {b}.",
              "Please work out {a} {word} {b}.", "How much is {a} {sym} {b}?", "Evaluate {a} {sym} {b}."),
    "heldout": ("What do you get for {a} {word} {b}?", "Find the value of {a} {sym} {b}.",
                "Quick question: {a} {sym} {b}", "Can you tell me what {a} {word} {b} is?", "Solve {a} {sym} {b}."),
}
OPS = {"+": ("plus",), "-": ("minus",), "*": ("times", "multiplied by")}
STORY_TEMPLATES = {  # (operation, template): the numbers are {a} and {b}; {name} {item}
    "train": (
        ("+", "{name} has {a} {item} and gets {b} more. How many {item} does {name} have now?"),
        ("-", "{name} had {a} {item} and gave away {b}. How many {item} are left?"),
        ("*", "There are {a} bags with {b} {item} in each. How many {item} are there in total?"),
        ("+", "A shop sold {a} {item} in the morning and {b} in the afternoon. How many did it sell that day?"),
        ("-", "A box held {a} {item}. {name} took out {b}. How many {item} are still in the box?"),
    ),
    "heldout": (
        ("+", "After finding {b} more {item}, {name}, who already had {a}, counts them all. What is the count?"),
        ("-", "Of {a} {item}, {b} were broken. How many are not broken?"),
        ("*", "{name} buys {a} packs of {item}, each pack holding {b}. How many {item} is that?"),
    ),
}
NAMES = {"train": ("Tom", "Anna", "Li", "Maria", "Omar", "Sara", "Ken", "Julia"),
         "heldout": ("Priya", "Diego", "Mei", "Lukas")}
ITEMS = {"train": ("apples", "marbles", "stickers", "pencils", "cards", "coins"),
         "heldout": ("shells", "stamps", "cookies", "buttons")}
PERCENT_TEMPLATES = {"train": ("What is {p}% of {n}?", "Calculate {p} percent of {n}."),
                     "heldout": ("How much is {p}% of {n}?",)}


def _operands(op: str, rng: random.Random) -> tuple[int, int]:
    if op == "*":
        return rng.randint(2, 12), rng.randint(2, 99)
    a, b = rng.randint(10, 999), rng.randint(10, 999)
    return (max(a, b), min(a, b)) if op == "-" else (a, b)


def _worked(expr: str, value: int) -> str:
    """The answer format every math example teaches: the calculation, then the number."""
    return f"{expr} = {value}. The answer is {value}."


def _math_sample(split: str, rng: random.Random) -> Pair:
    kind = rng.random()
    if kind < 0.5:
        op = rng.choice(tuple(OPS))
        a, b = _operands(op, rng)
        text = rng.choice(MATH_TEMPLATES[split]).format(a=a, b=b, sym=op, word=rng.choice(OPS[op]))
    elif kind < 0.85:
        op, template = rng.choice(STORY_TEMPLATES[split])
        a, b = _operands(op, rng) if op != "+" else (rng.randint(2, 99), rng.randint(2, 99))
        text = template.format(a=a, b=b, name=rng.choice(NAMES[split]), item=rng.choice(ITEMS[split]))
    else:
        p, base = rng.choice((10, 20, 25, 50)), rng.randint(1, 40)
        n = base * (100 // p)  # a whole-number answer
        text = rng.choice(PERCENT_TEMPLATES[split]).format(p=p, n=n)
        value = n * p // 100
        return user(text, _worked(f"{n} * {p} / 100", value), "math", str(value))
    value = {"+": a + b, "-": a - b, "*": a * b}[op]
    return user(text, _worked(f"{a} {op} {b}", value), "math", str(value))


def make_math(split: str, n: int, seed: int = 0) -> list[Pair]:
    """`n` distinct math problems of `split` with worked answers; numbers are random in both splits,
    the phrasings (templates, names, items) differ."""
    _check_split(split)
    rng = random.Random(f"math/{split}/{seed}")
    return _distinct(lambda: _math_sample(split, rng), n, f"math {split}")


def math_second_set(n: int = 60, seed: int = 0) -> list[Pair]:
    """A second, differently written math set: multi-sentence stories about money, distance and time by
    another generator (none of its frames or wording is in either split). Same four operations."""
    rng = random.Random(f"math-second/{seed}")
    frames = (
        ("+", "I walked {a} metres to the station and then {b} metres to the office. "
              "How far did I walk altogether?"),
        ("-", "My phone battery had {a} minutes left. A video call used {b} minutes. How many minutes remain?"),
        ("*", "Tickets cost {a} euros each and we need {b} of them. What do we pay?"),
        ("+", "Our team scored {a} points in the first half and {b} in the second. What was the final score?"),
        ("-", "The library owns {a} novels and lent out {b} this week. How many novels are on the shelves?"),
        ("*", "A bus makes {a} trips a day carrying {b} people each time. How many passengers is that per day?"),
    )

    def make() -> Pair:
        op, frame = rng.choice(frames)
        a, b = _operands(op, rng) if op != "+" else (rng.randint(10, 500), rng.randint(10, 500))
        value = {"+": a + b, "-": a - b, "*": a * b}[op]
        return user(frame.format(a=a, b=b), _worked(f"{a} {op} {b}", value), "math", str(value))

    return _distinct(make, n, "second-set math")


NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def last_number(text: str) -> str | None:
    """The last number written in `text` (commas between thousands removed), or None."""
    found = NUMBER.findall(text.replace(",", ""))
    return found[-1] if found else None


def math_exact(answers: list[str], pairs: list[Pair]) -> float:
    """Share of answers whose last number is the exact result (lenient about the words around it)."""
    def same(got: str | None, truth: str) -> bool:
        return got is not None and float(got) == float(truth)

    return sum(same(last_number(a), p.truth) for a, p in zip(answers, pairs)) / max(1, len(pairs))


# ---------------------------------------------------------------- code

@dataclass(frozen=True)
class StdlibFunction:
    module: str
    name: str
    header: str  # the `def` line(s) and the docstring, as written
    source: str  # the whole function


def stdlib_functions(max_lines: int = 24, max_files: int | None = None) -> list[StdlibFunction]:
    """Top-level functions with a docstring and at most `max_lines` lines, from the standard library's
    sources (shared.corpora), in a stable order."""
    from shared.corpora import stdlib_dir, stdlib_source_files

    root, found = stdlib_dir(), []
    for path in stdlib_source_files()[:max_files]:
        try:
            text = path.read_text(encoding="utf-8")
            tree = ast.parse(text)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        lines = text.splitlines()
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef) or node.decorator_list or node.name.startswith("__"):
                continue
            doc = ast.get_docstring(node, clean=False)
            if not doc or len(node.body) < 2 or node.end_lineno - node.lineno + 1 > max_lines:
                continue
            source = "\n".join(lines[node.lineno - 1: node.end_lineno])
            header = "\n".join(lines[node.lineno - 1: node.body[0].end_lineno])
            if "\t" not in source:
                found.append(StdlibFunction(module, node.name, header, source))
    return found


CODE_PROMPTS = ("Complete this Python function:", "Write the body of this function.",
                "Implement the following Python function.")


def make_code(split: str, n: int, seed: int = 0, functions: list[StdlibFunction] | None = None) -> list[Pair]:
    """`n` functions of `split` (held-out: whole modules never seen in training), shuffled by `seed`."""
    _check_split(split)
    functions = stdlib_functions() if functions is None else functions
    pool = [f for f in functions if _split_of(f"code/{f.module}") == split]
    rng = random.Random(f"code/{split}/{seed}")
    rng.shuffle(pool)
    if len(pool) < n:
        raise ValueError(f"only {len(pool)} {split} functions in the standard library, asked for {n}")
    return [user(f"{rng.choice(CODE_PROMPTS)}\n\n```python\n{f.header}\n```", f"```python\n{f.source}\n```", "code")
            for f in pool[:n]]


# ---------------------------------------------------------------- text

def doc_paragraphs(min_chars: int = 200, max_chars: int = 600) -> list[tuple[str, str]]:
    """(topic, paragraph) pairs of plain prose from the Python documentation's topics (no code, no
    grammar rules, no tables), in a stable order. A paragraph that several topics repeat is kept once,
    under the first of them, so it can never be in both splits."""
    from pydoc_data.topics import topics

    found, seen = [], set()
    for key in sorted(topics):
        for block in topics[key].split("\n\n"):
            lines = block.splitlines()
            if not lines or any(line.startswith((" ", "*", "=", "-", "+", ">")) for line in lines):
                continue
            text = " ".join(line.strip() for line in lines)
            if min_chars <= len(text) <= max_chars and text[-1] in ".:" and "::=" not in text and text not in seen:
                seen.add(text)
                found.append((key, text))
    return found


def misspell(text: str, rng: random.Random, rate: float = 0.12) -> str:
    """`text` with about `rate` of its longer words misspelt (two letters swapped, one dropped or doubled)."""
    words = text.split(" ")
    for i, word in enumerate(words):
        core = word.strip(".,:;()\"'")
        if len(core) < 5 or not core.isalpha() or rng.random() > rate:
            continue
        j = rng.randint(1, len(core) - 3)
        kind = rng.randrange(3)
        wrong = (core[:j] + core[j + 1] + core[j] + core[j + 2:] if kind == 0 else
                 core[:j] + core[j + 1:] if kind == 1 else core[:j] + core[j] + core[j:])
        words[i] = word.replace(core, wrong, 1)
    return " ".join(words)


TEXT_FIX = {"train": ("Fix the spelling mistakes in this text:", "Correct the typos:"),
            "heldout": ("Please proofread this paragraph and fix the spelling:",)}
TEXT_CONTINUE = {"train": ("Continue this text:", "Write the rest of this paragraph:"),
                 "heldout": ("How might this paragraph go on? Continue it:",)}


def make_text(split: str, n: int, seed: int = 0) -> list[Pair]:
    """`n` prose tasks of `split`: proofreading (the answer is the original paragraph) or continuing the
    second half of a paragraph. Held-out paragraphs come from documentation topics never trained on."""
    _check_split(split)
    pool = [text for topic, text in doc_paragraphs() if _split_of(f"text/{topic}", 4) == split]
    rng = random.Random(f"text/{split}/{seed}")

    def make() -> Pair:
        text = rng.choice(pool)
        if rng.random() < 0.5:
            wrong = misspell(text, rng)
            return user(f"{rng.choice(TEXT_FIX[split])}\n\n{wrong}", text, "text")
        words = text.split(" ")
        cut = len(words) // 2
        return user(f"{rng.choice(TEXT_CONTINUE[split])}\n\n{' '.join(words[:cut])}", " ".join(words[cut:]), "text")

    return _distinct(make, n, f"text {split}")


# ---------------------------------------------------------------- chat

CHAT = {
    "train": {
        "greet": ("Hi!", "Hello there", "Hey, good morning!", "Hi, I'm {name}.", "Hello! My name is {name}."),
        "how": ("How are you?", "How is your day going?", "How are you doing today?"),
        "thanks": ("Thanks a lot!", "Thank you, that helps.", "Great, thanks!"),
        "recommend": ("Can you recommend a {thing}?", "Do you know a good {thing}?", "Suggest a {thing}, please."),
        "feel": ("I'm feeling {feeling} today.", "Honestly, I feel {feeling}."),
        "tips": ("Do you have tips for {goal}?", "How can I get better at {goal}?"),
    },
    "heldout": {
        "greet": ("Good evening!", "Hiya, {name} here."),
        "how": ("What's up with you?", "Are you having a good day?"),
        "thanks": ("Cheers, much appreciated.", "That was useful, thank you!"),
        "recommend": ("I'm looking for a {thing}. Any ideas?", "What {thing} would you suggest?"),
        "feel": ("Today I am quite {feeling}.",),
        "tips": ("What's your advice on {goal}?",),
    },
}
CHAT_NAMES = {"train": ("Alex", "Sam", "Nina", "Jon", "Emma"), "heldout": ("Ravi", "Chloe")}
THINGS = {  # thing -> (suggestion, why)
    "train": {
        "book": ("'The Hobbit' by J. R. R. Tolkien", "an adventure that is easy to start and hard to put down"),
        "film": ("'Spirited Away'", "a beautiful animated story for any age"),
        "board game": ("Ticket to Ride", "quick to learn and fun with two to five players"),
        "houseplant": ("a snake plant", "it survives low light and forgotten watering"),
        "podcast": ("a short daily news podcast", "it fits into a commute"),
        "hobby": ("sketching", "all you need is a pencil and a notebook"),
    },
    "heldout": {
        "novel": ("'Pride and Prejudice' by Jane Austen", "witty, warm and still very readable"),
        "card game": ("Uno", "everyone knows it and a round takes minutes"),
        "weekend activity": ("a walk in a park you have never visited", "it is free and refreshing"),
    },
}
FEELINGS = {  # feeling -> the reply's middle
    "train": {"tired": "a short break, some water and a bit of fresh air can help",
              "happy": "it is great to hear that, enjoy the good mood",
              "stressed": "try writing down the next small step and taking a few slow breaths",
              "bored": "maybe try something new, even a ten-minute walk changes the day"},
    "heldout": {"nervous": "that is normal before something important, slow breathing and preparation help",
                "lonely": "reaching out to a friend, even with a short message, can make a difference"},
}
GOALS = {  # goal -> three tips
    "train": {"sleeping better": ("go to bed at the same time", "keep screens out of the bedroom",
                                  "avoid coffee after lunch"),
              "learning a language": ("practise a little every day", "listen to native speakers",
                                      "speak from the first week"),
              "staying focused": ("work in short blocks", "silence notifications", "keep one task in front of you"),
              "running": ("start slowly", "increase your distance gradually", "rest between runs")},
    "heldout": {"cooking at home": ("plan meals for the week", "start with simple recipes", "cook in batches"),
                "saving money": ("track what you spend", "set a monthly budget", "wait a day before big buys")},
}


def _chat_turn(kind: str, split: str, rng: random.Random) -> tuple[str, str]:
    """(user text, assistant reply) of one kind of turn."""
    template = rng.choice(CHAT[split][kind])
    if kind == "greet":
        name = rng.choice(CHAT_NAMES[split])
        hello = f"Hello {name}!" if "{name}" in template else "Hello!"
        return template.format(name=name), f"{hello} Nice to meet you. How can I help you today?"
    if kind == "how":
        return template, "I'm doing well, thank you for asking! How about you?"
    if kind == "thanks":
        return template, "You're welcome! Let me know if there is anything else I can do for you."
    if kind == "recommend":
        thing, (pick, why) = rng.choice(sorted(THINGS[split].items()))
        return template.format(thing=thing), f"Sure! You could try {pick}: {why}. Would you like another idea?"
    if kind == "feel":
        feeling, middle = rng.choice(sorted(FEELINGS[split].items()))
        return (template.format(feeling=feeling),
                f"Thanks for telling me that you feel {feeling}. {middle[0].upper()}{middle[1:]}. "
                "Do you want to talk about it?")
    goal, tips = rng.choice(sorted(GOALS[split].items()))
    return (template.format(goal=goal),
            f"Here are three tips for {goal}: 1. {tips[0].capitalize()}. 2. {tips[1].capitalize()}. "
            f"3. {tips[2].capitalize()}. Good luck!")


def make_chat(split: str, n: int, seed: int = 0) -> list[Pair]:
    """`n` distinct dialogues of `split`: one turn, or a greeting then a second turn (the answer is the
    last reply; the first exchange is context)."""
    _check_split(split)
    rng = random.Random(f"chat/{split}/{seed}")
    kinds = tuple(CHAT[split])

    def make() -> Pair:
        turns = [("greet" if rng.random() < 0.5 else rng.choice(kinds))] if rng.random() < 0.4 else []
        turns.append(rng.choice(kinds[1:]))
        messages: list[tuple[str, str]] = []
        for kind in turns:
            text, reply = _chat_turn(kind, split, rng)
            messages += [("user", text), ("assistant", reply)]
        return Pair(tuple(messages[:-1]), messages[-1][1], "chat")

    return _distinct(make, n, f"chat {split}")


MAKERS = {"code": make_code, "math": make_math, "text": make_text, "chat": make_chat}


def make_pairs(domain: str, split: str, n: int, seed: int = 0) -> list[Pair]:
    """`n` examples of `domain` (one of DOMAINS) from `split`."""
    if domain not in MAKERS:
        raise ValueError(f"unknown domain {domain!r}; choose from {', '.join(DOMAINS)}")
    return MAKERS[domain](split, n, seed)


# ---------------------------------------------------------------- prompts, encoding and scores

def pair_texts(tokenizer, pair: Pair) -> tuple[str, str]:
    """(prompt, completion) in the chat template: the completion is the answer plus the end-of-turn token."""
    prompt = tokenizer.apply_chat_template(pair.chat(), tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template([*pair.chat(), {"role": "assistant", "content": pair.answer}], tokenize=False)
    if not full.startswith(prompt):
        raise ValueError("the chat template does not extend the generation prompt with the answer")
    end = full.index(tokenizer.eos_token, len(prompt)) + len(tokenizer.eos_token)
    return prompt, full[len(prompt):end]


def encode_pairs(tokenizer, pairs: list[Pair], max_length: int) -> list[tuple[list[int], list[int]]]:
    """(ids, labels) per pair with the prompt masked (month 2's `encode_pair`); longer ones are dropped."""
    from month2_llm_core.finetune import encode_pair

    encoded = [encode_pair(tokenizer, *pair_texts(tokenizer, p), max_length) for p in pairs]
    return [e for e in encoded if e is not None]


@torch.no_grad()
def answer_nll(model, tokenizer, pairs: list[Pair], batch_size: int = 8, max_length: int = 512) -> dict[str, float]:
    """Mean cross-entropy per answer token over `pairs` (token-weighted), and its perplexity."""
    from month2_llm_core.finetune import IGNORE_INDEX, answer_loss, collate

    encoded = encode_pairs(tokenizer, pairs, max_length)
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start:start + batch_size]
        batch = collate(chunk, tokenizer.pad_token_id)
        n = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
        total += answer_loss(model, batch).item() * n
        tokens += n
    model.train(was_training)
    loss = total / max(1, tokens)
    return {"loss": loss, "perplexity": float(torch.tensor(loss).exp()), "n": len(encoded), "tokens": tokens}


@torch.no_grad()
def greedy_answers(model, tokenizer, pairs: list[Pair], max_new_tokens: int = 40, batch_size: int = 16) -> list[str]:
    """Greedy answers to the pairs' prompts, in left-padded batches, cut at the end-of-turn token."""
    was_training = model.training
    model.eval()
    answers: list[str] = []
    for start in range(0, len(pairs), batch_size):
        prompts = [pair_texts(tokenizer, p)[0] for p in pairs[start:start + batch_size]]
        enc = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        answers += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    model.train(was_training)
    return answers


def evaluation_sets(domain: str, n: int, seed: int = 0) -> dict[str, list[Pair]]:
    """The held-out sets a domain is scored on: its generator's held-out split, and for math also the
    second, differently written set."""
    sets = {"heldout": make_pairs(domain, "heldout", n, seed)}
    if domain == "math":
        sets["second"] = math_second_set(n, seed)
    return sets


def score_domain(model, tokenizer, domain: str, sets: dict[str, list[Pair]],
                 max_new_tokens: int = 40) -> dict[str, Any]:
    """The domain's metric on each evaluation set: math exact answers (and the answer-token loss), the
    others the answer-token loss."""
    scores: dict[str, Any] = {}
    for name, pairs in sets.items():
        s: dict[str, Any] = answer_nll(model, tokenizer, pairs)
        if domain == "math":
            answers = greedy_answers(model, tokenizer, pairs, max_new_tokens)
            s["exact"] = math_exact(answers, pairs)
            s["examples"] = [{"question": p.messages[-1][1], "truth": p.truth, "answer": a}
                             for p, a in zip(pairs[:3], answers[:3])]
        scores[name] = s
    return scores


# ---------------------------------------------------------------- the mixture month 6 calls

@dataclass
class RoutedAnswer:
    expert: str  # a domain, or GENERAL (the router was unsure: the base model answered)
    probability: float  # the router's calibrated probability of its top domain
    answer: str
    candidate: str = ""  # the router's top domain (differs from `expert` on a fallback)


class ExpertBackend:
    """A `month2_llm_core.chat.Backend` for one expert: the shared base with that expert's adapter active
    (GENERAL: no adapter). Decoding goes through the model's forward (month 2's `TransformersBackend` with
    `fast=False`: its fast decoder fuses plain weights and knows no LoRA)."""

    def __init__(self, mixture: MixtureOfAdapters, expert: str) -> None:
        from month2_llm_core.chat import TransformersBackend

        self.mixture, self.expert = mixture, expert
        self._inner = TransformersBackend(mixture.model, mixture.tokenizer, mixture.model_name, fast=False)
        self.name = f"expert:{expert} ({mixture.model_name} + {'no adapter' if expert == GENERAL else 'LoRA'})"

    def count_tokens(self, messages: list[Message]) -> int:
        return self._inner.count_tokens(messages)

    def stream(self, messages: list[Message], sampling: Sampling) -> Iterator[str]:
        with self.mixture.use(self.expert):
            yield from self._inner.stream(messages, sampling)


class MixtureOfAdapters:
    """One base model, every expert's LoRA adapter resident on it (peft multi-adapter), one active per request.

    Switching is `set_adapter` (no weights move: each adapter's A and B stay in memory, a few MB each);
    GENERAL runs the base with the adapters disabled. `use(expert)` holds a lock while an expert is active,
    so two threads never see each other's adapter: requests on one mixture run one at a time."""

    def __init__(self, model, tokenizer, experts: list[str], router=None, model_name: str = "smollm2") -> None:
        self.model, self.tokenizer, self.experts = model, tokenizer, list(experts)
        self.router, self.model_name = router, model_name
        self._lock = threading.RLock()

    @classmethod
    def from_base(cls, base, tokenizer, adapter_dirs: dict[str, str | Path], router=None,
                  model_name: str = "smollm2") -> MixtureOfAdapters:
        """Wrap `base` (changed in place) with the adapters in `adapter_dirs` ({expert name: folder})."""
        from peft import PeftModel

        from month2_llm_core.toolcall_model import require_adapter

        if not adapter_dirs:
            raise ValueError("a mixture needs at least one adapter")
        names = list(adapter_dirs)
        dirs = {name: str(require_adapter(adapter_dirs[name])) for name in names}  # all checked before loading
        model = PeftModel.from_pretrained(base, dirs[names[0]], adapter_name=names[0])
        for name in names[1:]:
            model.load_adapter(dirs[name], adapter_name=name)
        return cls(model.eval(), tokenizer, names, router, model_name)

    @classmethod
    def load(cls, adapters_dir: str | Path = ADAPTERS_DIR, model_name: str = "smollm2",
             router_dir: str | Path | None = ADAPTERS_DIR / "router",
             domains: tuple[str, ...] = DOMAINS) -> MixtureOfAdapters:
        """SmolLM2 (loaded once) + `adapters_dir/<domain>` for every domain, and the router saved in
        `router_dir` (default: the committed one, `adapters_dir/router`; None: no router)."""
        from month2_llm_core.toolcall_model import require_adapter
        from month4_moe.router import Router
        from shared.models import load_chat_model

        dirs = {d: require_adapter(Path(adapters_dir) / d) for d in domains}
        router = Router.load(router_dir) if router_dir else None
        base, tokenizer = load_chat_model(model_name, progress=False)
        return cls.from_base(base, tokenizer, dirs, router, model_name)

    @contextmanager
    def use(self, expert: str | None) -> Iterator[None]:
        """Run the block with `expert`'s adapter active (None or GENERAL: the base model alone)."""
        if expert not in (None, GENERAL) and expert not in self.model.peft_config:
            raise KeyError(f"no adapter {expert!r}; the mixture has {', '.join(self.experts)}")
        with self._lock:
            if expert in (None, GENERAL):
                with self.model.disable_adapter():
                    yield
            else:
                self.model.set_adapter(expert)
                yield

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """The model to the block alone, adapters left as they are: for one forward over a batch that mixes
        experts (peft's `adapter_names`, one adapter per row), which `use` cannot express."""
        with self._lock:
            yield

    def add_merged(self, name: str = "merged", experts: list[str] | None = None) -> str:
        """Add one adapter that is the sum of the experts' updates (what merging all into the weights gives)."""
        experts = experts or self.experts
        if name not in self.model.peft_config:
            self.model.add_weighted_adapter(experts, [1.0] * len(experts), name, combination_type="cat")
        return name

    def adapter_bytes(self) -> dict[str, int]:
        """Bytes of each expert's own weights (its LoRA A and B matrices) as held in memory."""
        sizes = dict.fromkeys(self.experts, 0)
        for pname, p in self.model.named_parameters():
            for expert in self.experts:
                if pname.endswith(f".{expert}.weight") and ".lora_" in pname:
                    sizes[expert] += p.numel() * p.element_size()
        return sizes

    def backend(self, expert: str) -> ExpertBackend:
        """A chat Backend answering as `expert` (a domain or GENERAL)."""
        if expert != GENERAL and expert not in self.experts:
            raise KeyError(f"no adapter {expert!r}; the mixture has {', '.join(self.experts)}")
        return ExpertBackend(self, expert)

    def generate(self, expert: str, messages: list[Message], sampling: Sampling | None = None) -> str:
        return "".join(self.backend(expert).stream(messages, sampling or Sampling(max_new_tokens=128))).strip()

    def route_and_generate(self, text: str, sampling: Sampling | None = None) -> RoutedAnswer:
        """Route `text` with the router, answer it with the chosen expert (GENERAL when the router is unsure)."""
        if self.router is None:
            raise ValueError("this mixture was loaded without a router (router_dir=None)")
        decision = self.router.decide(text)
        answer = self.generate(decision.expert, [{"role": "user", "content": text}], sampling)
        return RoutedAnswer(decision.expert, decision.probability, answer, decision.candidate)
