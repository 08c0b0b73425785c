"""Generated math and chat text for the four-domain mixture (code and prose come from Python itself).

Each domain has two generators written independently, with different templates and wording:
`math_problems` / `chat_dialogues` make the training text and its held-out split (other seeds);
`math_problems_other` and the hand-written dialogues in chat_other.txt are the second evaluation
set, so a loss measured on them is not a loss on the training generator's own phrasings.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

NAMES = ["Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo", "Iris", "Jonas", "Kemi", "Liam", "Mei",
         "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sami", "Tara"]
ITEMS = ["apples", "books", "marbles", "stamps", "pencils", "cookies", "shells", "cards", "coins", "stickers"]
CHAT_OTHER = Path(__file__).with_name("chat_other.txt")


# -- math, generator 1: "Problem / Solution / Answer" ---------------------------------------------------
def _arithmetic(r: random.Random) -> str:
    a, b = r.randint(2, 999), r.randint(2, 999)
    op = r.choice("+-*")
    if op == "*":
        a, b = r.randint(2, 99), r.randint(2, 99)
    value = {"+": a + b, "-": a - b, "*": a * b}[op]
    return f"Problem: What is {a} {op} {b}?\nSolution: {a} {op} {b} = {value}.\nAnswer: {value}"


def _division(r: random.Random) -> str:
    b, q = r.randint(2, 12), r.randint(2, 60)
    rem = r.randint(0, b - 1)
    a = b * q + rem
    tail = f" remainder {rem}" if rem else ""
    return (f"Problem: Divide {a} by {b}.\nSolution: {b} * {q} = {b * q}, and {a} - {b * q} = {rem}.\n"
            f"Answer: {q}{tail}")


def _linear(r: random.Random) -> str:
    a, x, b = r.randint(2, 9), r.randint(-12, 15), r.randint(1, 40)
    c = a * x + b
    return (f"Problem: Solve for x: {a}x + {b} = {c}.\nSolution: Subtract {b} from both sides: {a}x = {c - b}. "
            f"Divide both sides by {a}: x = {x}.\nAnswer: x = {x}")


def _word_total(r: random.Random) -> str:
    name, item = r.choice(NAMES), r.choice(ITEMS)
    a, b = r.randint(3, 60), r.randint(2, 40)
    return (f"Problem: {name} has {a} {item} and gets {b} more. How many {item} does {name} have now?\n"
            f"Solution: {a} + {b} = {a + b}.\nAnswer: {a + b}")


def _word_groups(r: random.Random) -> str:
    name, item = r.choice(NAMES), r.choice(ITEMS)
    boxes, each = r.randint(2, 12), r.randint(2, 25)
    return (f"Problem: {name} packs {boxes} boxes with {each} {item} in each box. How many {item} is that?\n"
            f"Solution: {boxes} * {each} = {boxes * each}.\nAnswer: {boxes * each}")


def _percent(r: random.Random) -> str:
    p, n = r.choice([10, 20, 25, 50, 75]), r.randint(1, 40) * 4
    return f"Problem: What is {p}% of {n}?\nSolution: {p}/100 * {n} = {p * n // 100}.\nAnswer: {p * n // 100}"


MATH_KINDS: list[Callable[[random.Random], str]] = [_arithmetic, _division, _linear, _word_total, _word_groups,
                                                   _percent]


# -- math, generator 2 (other wording and layout): "Q / A" with the reasoning in prose ---------------------
def _other_sum(r: random.Random) -> str:
    a, b = r.randint(10, 500), r.randint(10, 500)
    return f"Q: Compute the sum of {a} and {b}.\nA: Adding {b} to {a} gives {a + b}. The sum is {a + b}."


def _other_speed(r: random.Random) -> str:
    speed, hours = r.randint(20, 90), r.randint(2, 8)
    return (f"Q: A car drives at {speed} km per hour for {hours} hours. How far does it go?\n"
            f"A: Distance is speed times time, {speed} times {hours}, which is {speed * hours} km.")


def _other_equation(r: random.Random) -> str:
    a, x, b = r.randint(2, 7), r.randint(1, 20), r.randint(2, 30)
    return (f"Q: Find the number x such that {a * x - b} equals {a} times x minus {b}.\n"
            f"A: Adding {b} gives {a * x}, and dividing by {a} gives x = {x}.")


def _other_share(r: random.Random) -> str:
    people, each = r.randint(2, 9), r.randint(2, 15)
    total = people * each
    return (f"Q: {total} sweets are shared equally among {people} children. How many does each child get?\n"
            f"A: {total} divided by {people} is {each}, so each child gets {each} sweets.")


def _other_rectangle(r: random.Random) -> str:
    w, h = r.randint(2, 30), r.randint(2, 30)
    return (f"Q: What is the area of a rectangle {w} m wide and {h} m long?\n"
            f"A: Area is width times length: {w} x {h} = {w * h} square metres.")


MATH_OTHER_KINDS: list[Callable[[random.Random], str]] = [_other_sum, _other_speed, _other_equation, _other_share,
                                                         _other_rectangle]


def _join(kinds: list[Callable[[random.Random], str]], n_chars: int, seed: int) -> str:
    r, parts, total = random.Random(seed), [], 0
    while total < n_chars:
        parts.append(r.choice(kinds)(r))
        total += len(parts[-1]) + 2
    return "\n\n".join(parts)[:n_chars]


def math_problems(n_chars: int, seed: int = 0) -> str:
    return _join(MATH_KINDS, n_chars, seed)


def math_problems_other(n_chars: int, seed: int = 0) -> str:
    return _join(MATH_OTHER_KINDS, n_chars, seed)


# -- chat: dialogues in the ChatML template (SmolLM2's) ----------------------------------------------------
GLOSSARY = {
    "photosynthesis": "the process plants use to turn sunlight, water and carbon dioxide into sugar and oxygen",
    "inflation": "a general rise in prices, so that the same money buys less over time",
    "a haiku": "a short poem of three lines with five, seven and five syllables",
    "gravity": "the force that pulls objects with mass towards each other",
    "a noun": "a word that names a person, place, thing or idea",
    "democracy": "a system of government in which citizens choose their leaders by voting",
    "an ecosystem": "a community of living things together with their environment",
    "compound interest": "interest earned on both the original amount and the interest already added",
    "a metaphor": "a figure of speech that describes something as if it were something else",
    "erosion": "the slow wearing away of rock and soil by wind, water or ice",
    "a vaccine": "a preparation that trains the immune system to recognise a germ",
    "recycling": "turning used materials into new products instead of throwing them away",
}
ADVICE = {
    "sleep better": ["keep a regular bedtime", "avoid screens for an hour before bed", "keep your room cool and dark"],
    "learn a new language": ["practise a little every day", "speak with native speakers", "label things at home"],
    "stay focused while studying": ["work in short blocks with breaks", "put your phone in another room",
                                    "write down one goal per session"],
    "save money": ["track what you spend for a month", "set up an automatic transfer to savings",
                   "plan meals before shopping"],
    "start running": ["begin with walk-run intervals", "buy comfortable shoes", "add distance slowly each week"],
    "keep houseplants alive": ["check the soil before watering", "give them bright indirect light",
                               "repot them when the roots fill the pot"],
}
RECOMMEND = {
    "a book about space": "Cosmos by Carl Sagan is a classic that explains the universe with wonder",
    "a board game for four people": "Ticket to Ride is easy to learn and fun for four players",
    "a quick dinner": "a vegetable stir-fry with rice takes about twenty minutes",
    "a hobby for rainy days": "drawing or painting needs little space and no special skills to start",
    "a podcast about history": "a narrative history podcast that tells one story per episode is a good start",
    "a weekend trip near the sea": "a small coastal town with walking paths makes a relaxing weekend",
}
GREETINGS = ["Hi!", "Hello there.", "Hey, good morning!", "Hi, hope you are well.", "Good evening!"]
THANKS = ["Thanks a lot!", "That helps, thank you.", "Great, thanks!", "Thank you so much."]
REPLIES_TO_THANKS = ["You're welcome! Let me know if you need anything else.", "Happy to help!",
                     "Glad it helped. Have a great day!"]
SYSTEM = ["You are a helpful assistant.", "You are a friendly and concise assistant."]


def _turn(role: str, text: str) -> str:
    return f"<|im_start|>{role}\n{text}<|im_end|>\n"


def _dialogue(r: random.Random) -> str:
    turns = [_turn("system", r.choice(SYSTEM))]
    kind = r.choice(["define", "advice", "recommend"])
    opener = r.choice(GREETINGS) + " " if r.random() < 0.5 else ""
    if kind == "define":
        word, meaning = r.choice(list(GLOSSARY.items()))
        turns += [_turn("user", f"{opener}What is {word}?"),
                  _turn("assistant", f"{word[0].upper() + word[1:]} is {meaning}.")]
    elif kind == "advice":
        goal, tips = r.choice(list(ADVICE.items()))
        chosen = r.sample(tips, 2)
        turns += [_turn("user", f"{opener}How can I {goal}?"),
                  _turn("assistant", f"Here are two tips: first, {chosen[0]}; second, {chosen[1]}.")]
    else:
        what, answer = r.choice(list(RECOMMEND.items()))
        turns += [_turn("user", f"{opener}Can you recommend {what}?"),
                  _turn("assistant", f"Sure! {answer[0].upper() + answer[1:]}.")]
    if r.random() < 0.5:
        turns += [_turn("user", r.choice(THANKS)), _turn("assistant", r.choice(REPLIES_TO_THANKS))]
    return "".join(turns)


def chat_dialogues(n_chars: int, seed: int = 0) -> str:
    return _join([_dialogue], n_chars, seed)


def chat_other() -> str:
    """Hand-written dialogues on other subjects, in the same template: chat's second evaluation set."""
    return CHAT_OTHER.read_text(encoding="utf-8")
