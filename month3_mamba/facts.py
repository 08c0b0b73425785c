"""The memory formats: how a fact is written into a document, asked, and answered.

Two formats, one interface (`FactFormat`):

- `braces` (the first task): `{qzv: 47}` anywhere in the text, asked `{qzv? ` and answered
  `47}`. Keys are `key_len` lowercase letters, values `value_len` digits: fixed length, so
  the answer is decoded for exactly that many bytes (the `}` was never scored).
- `sentences` (what month 6 needs): a fact is a plain sentence, `my employee number is 4417.`
  or `The project code is BLUE-7.`, between words of the prose; it is asked in one fixed
  template that starts the answer with the fact's own words,
  `\\nQ: what is my employee number?\\nA: my employee number is `, and answered `4417.`: the
  value, then the terminator `.` that the model learns to emit, so answers have any length. A key
  the document never stated is answered `unknown.` (`UNKNOWN`; trained where the task's `untold`
  share is above 0): a memory that says it was not told, rather than the value of a key like it.
  Starting the answer as the statement started makes the answer a copy of what followed the
  same words (the induction-head pattern SSMs learn and keep at any length); with the bare
  `A: ` the model had to map the question's wording onto the statement's, and small readers
  did not learn it (RESULTS.md). Keys and values come from one of two vocabularies written
  separately: `train` (the training generator: listed phrases and random words of the training
  prose, listed value shapes and random codes and words) and `heldout` (other owners, things and
  value shapes, for the second evaluation set), so a score on `heldout` is not a score on the
  generator's own phrasing.

A `Fact` carries the exact strings; `FactFormat.prompt(question)` turns a user's question
("what is my employee number?", "my employee number", "qzv?") into the text the model continues.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Fact:
    key: str
    value: str
    statement: str  # what the document says, e.g. "My door code is 4417. "
    question: str  # the prompt the answer follows, e.g. "\nQ: what is my door code?\nA: my door code is "
    answer: str  # what a right reader writes after the question (scored, and trained on)
    closing: str = ""  # written after the answer in a document, not scored (braces: "}")

    @property
    def asked(self) -> str:
        """The question with its answer, as a document's questions part writes it."""
        return self.question + self.answer + self.closing


UNKNOWN = "unknown"  # the sentence format's answer for a key the document never stated


class FactFormat:
    name: str
    terminator: str
    unknown: str | None = None  # the answer for a key never stated, where the format has one
    fixed_length: int | None  # answers of a fixed length (decode exactly that many bytes), or None: up to terminator
    max_answer: int  # the longest answer (terminator included): where decoding stops at the latest
    max_fact_bytes: int  # the most bytes one fact, its question and its answer take
    max_statement_bytes: int  # the most bytes one fact's statement takes
    snap_to_words: bool  # statements go between words (sentences) or anywhere (braces)

    def random_facts(self, rng: random.Random, n: int, vocab: str = "train") -> list[Fact]:
        raise NotImplementedError

    def fact(self, key: str, value: str) -> Fact:
        raise NotImplementedError

    def key_of(self, question: str) -> str:
        raise NotImplementedError

    def prompt(self, question: str) -> str:
        """The text the model continues to answer `question`."""
        return self.fact(self.key_of(question), "").question

    def close_key(self, rng: random.Random, key: str, vocab: str = "train") -> str:
        raise ValueError(f"the {self.name} format's keys have no parts to change")

    def untold(self, key: str) -> Fact:
        """A question about `key` that no statement answered, with the format's `unknown` answer."""
        if self.unknown is None:
            raise ValueError(f"the {self.name} format has no answer for a key never stated")
        return self.fact(key, self.unknown)


class BraceFacts(FactFormat):
    name = "braces"
    terminator = "}"
    snap_to_words = False

    def __init__(self, key_len: int = 3, value_len: int = 2) -> None:
        self.key_len, self.value_len = key_len, value_len
        self.fixed_length = value_len
        self.max_answer = value_len
        longest = self.fact("k" * key_len, "0" * value_len)
        self.max_fact_bytes = len(longest.statement + longest.asked)
        self.max_statement_bytes = len(longest.statement)

    def fact(self, key: str, value: str) -> Fact:
        return Fact(key, value, "{" + key + ": " + value + "}", "{" + key + "? ", value, "}")

    def key_of(self, question: str) -> str:
        """'qzv?', '{qzv? ', ' qzv ' -> 'qzv'."""
        return question.strip().strip("{}").strip().rstrip("?").strip()

    def distinct_keys(self) -> int:
        return len(string.ascii_lowercase) ** self.key_len

    def random_facts(self, rng: random.Random, n: int, vocab: str = "train") -> list[Fact]:
        keys: set[str] = set()
        while len(keys) < n:
            keys.add("".join(rng.choices(string.ascii_lowercase, k=self.key_len)))
        return [self.fact(k, "".join(rng.choices(string.digits, k=self.value_len))) for k in sorted(keys)]


# The two vocabularies of the sentence format: (owners, qualifiers, things, value makers).
# Nothing is shared between them, so `heldout` keys and values are new to a model trained on `train`.
_COLOURS = ["red", "blue", "green", "amber", "violet", "silver", "orange", "black", "white", "grey"]
_ANIMALS = ["otter", "falcon", "tiger", "heron", "badger", "wolf", "lynx", "panda", "cobra", "raven"]
_NAMES = ["Margaret", "Oslo", "Pixel", "Bruno", "Juniper", "Atlas", "Nadia", "Quincy", "Tobias", "Lima",
          "Ferris", "Helena", "Orion", "Sasha", "Vienna", "Milo", "Rosa", "Kairo", "Ingrid", "Dakota"]
_WORDS = ["green tea", "river stone", "paper moon", "blue spruce", "north wind", "lemon cake", "quiet hour",
          "iron gate", "salt lake", "copper kettle", "winter rose", "silver birch"]
_H_NAMES = ["Kestrel", "Marlowe", "Zephyr", "Ottoline", "Caspian", "Wren", "Thaddeus", "Lisbon", "Nimbus",
            "Perpetua", "Agnes", "Brixton", "Calloway", "Delphine", "Everett", "Goa"]
_H_WORDS = ["delta nine", "oak hollow", "seven bells", "crimson tide", "maple row", "echo base", "low tide",
            "glass harbor", "pine needle", "hollow reed"]
_NATO = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "KILO", "LIMA", "SIERRA", "TANGO"]


def _digits(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(rng.choices(string.digits, k=rng.randint(lo, hi)))


def _code(rng: random.Random, alphabet: str, lo: int, hi: int) -> str:
    return "".join(rng.choices(alphabet, k=rng.randint(lo, hi)))


def _train_value(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:
        return _digits(rng, 1, 8)  # 4417
    if kind < 0.4:
        return rng.choice(_COLOURS + _ANIMALS).upper() + "-" + _digits(rng, 1, 3)  # BLUE-7
    if kind < 0.5:
        return rng.choice(_NAMES)  # Margaret
    if kind < 0.65:
        return _code(rng, string.ascii_uppercase + string.digits, 3, 8)  # K7Q2X
    if kind < 0.7:
        return rng.choice(_WORDS)  # green tea
    if kind < 0.85:
        return _code(rng, string.ascii_lowercase + string.digits, 1, 8)  # q7x2: no listed shape, only copying
    return " ".join(_prose_words(rng, rng.randint(1, 2)))  # words of the training prose: no list to learn


def _heldout_value(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:
        return _digits(rng, 2, 3) + "-" + _digits(rng, 2, 4)  # 48-2210
    if kind < 0.5:
        return rng.choice(_NATO) + " " + _digits(rng, 1, 2)  # TANGO 4
    if kind < 0.65:
        return rng.choice(_H_NAMES)  # Kestrel
    if kind < 0.85:
        return _code(rng, string.ascii_lowercase + string.digits, 2, 6) + rng.choice(string.ascii_uppercase)  # x7qB
    return rng.choice(_H_WORDS)  # delta nine


def _prose_words(rng: random.Random, n: int) -> list[str]:
    """n lowercase words of the training prose (3-10 letters), none of the held-out vocabulary's."""
    words = _training_key_words()
    return [rng.choice(words) for _ in range(n)]


@cache
def _training_key_words() -> tuple[str, ...]:
    from month3_mamba.prose import training_words  # prose.py reads the corpora on first use

    heldout = {w.lower().removesuffix("'s") for phrases in VOCABULARIES["heldout"][:3] for p in phrases
               for w in p.split()}
    heldout |= {w.lower() for w in _H_NAMES + _NATO + " ".join(_H_WORDS).split()}
    return tuple(sorted({w for w in training_words() if w.isalpha() and w.islower() and 3 <= len(w) <= 10}
                        - heldout))


def _train_thing(rng: random.Random, things: list[str]) -> str:
    """Half the keys name a listed thing, half are random words of the training prose ("window mode")."""
    return rng.choice(things) if rng.random() < 0.5 else " ".join(_prose_words(rng, rng.randint(1, 2)))


VOCABULARIES = {
    "train": (
        ["my", "our", "your", "the", "his", "her", "their", "my sister's", "my father's", "the team's",
         "the company's", "our client's", "my neighbour's"],
        ["", "", "", "", "new ", "old ", "backup ", "office ", "home ", "second ", "temporary ", "current ",
         "spare "],
        ["employee number", "project code", "door code", "locker number", "bank pin", "phone extension",
         "room number", "flight number", "wifi password", "license plate", "account number", "badge id",
         "seat number", "gate", "parking spot", "passport number", "order number", "ticket code", "server name",
         "meeting room", "favourite colour", "cat's name", "dog's name", "street", "zip code", "bus line",
         "train platform", "table number", "safe combination", "vault code", "team name", "desk number",
         "floor", "apartment number", "invoice number", "tracking number", "booking reference",
         "membership number", "student id", "shoe size", "blood type", "lucky number", "password hint",
         "router name", "printer name", "alarm code", "bike lock code", "car colour", "pet's name"],
        _train_value,
        _train_thing,
    ),
    "heldout": (
        ["Alice's", "grandma's", "the lab's", "the landlord's", "Tom's", "the club's", "this week's",
         "the museum's", "uncle Ray's"],
        ["", "", "", "spare ", "winter ", "night ", "guest "],
        ["storage unit", "hotel room", "luggage tag", "conference pin", "radio frequency", "mailbox number",
         "ferry cabin", "lab bench", "rehearsal time", "horse's name", "garden plot", "boat name",
         "choir part", "kiln setting", "recipe card", "shelf label", "telescope mount", "trail marker",
         "violin case code", "pharmacy slot"],
        _heldout_value,
        lambda rng, things: rng.choice(things),
    ),
}
VOCABS = tuple(VOCABULARIES)
QUESTION_TEMPLATE = "\nQ: what is {key}?\nA: {key} is "


def _longest(vocab: str) -> tuple[int, int]:
    owners, qualifiers, things, *_ = VOCABULARIES[vocab]
    key = max(map(len, owners)) + 1 + max(map(len, qualifiers)) + max(21, *map(len, things))  # 2 prose words: 21
    return key, 21  # no value maker writes more than 21 bytes


class SentenceFacts(FactFormat):
    name = "sentences"
    terminator = "."
    unknown = UNKNOWN
    fixed_length = None
    snap_to_words = True

    def __init__(self) -> None:
        key, value = max(_longest(v) for v in VOCABS)
        self.max_answer = value + 1
        longest = self.fact("k" * key, "v" * value)
        self.max_fact_bytes = len(longest.statement + longest.asked)
        self.max_statement_bytes = len(longest.statement)

    def fact(self, key: str, value: str, capital: bool = False) -> Fact:
        sentence = f"{key} is {value}."
        if capital:
            sentence = sentence[0].upper() + sentence[1:]
        return Fact(key, value, sentence + " ", QUESTION_TEMPLATE.format(key=key), value + self.terminator)

    def key_of(self, question: str) -> str:
        """'What is my door code?', 'what's my door code', 'my door code' -> 'my door code'."""
        key = " ".join(question.split()).rstrip("?").strip()
        for lead in ("what is ", "what's "):
            if key.lower().startswith(lead):
                key = key[len(lead) :]
        if key[:1].isupper() and key[1:2].islower() and key.split(" ")[0].lower() in _LOWER_LEADS:
            key = key[0].lower() + key[1:]  # "My door code" -> "my door code", but not "Alice's ..."
        return key

    def random_facts(self, rng: random.Random, n: int, vocab: str = "train") -> list[Fact]:
        """n facts with distinct keys and values, from vocabulary `vocab`."""
        owners, qualifiers, things, make_value, make_thing = VOCABULARIES[vocab]
        keys: dict[str, str] = {}
        values: set[str] = set()
        while len(keys) < n:
            key = f"{rng.choice(owners)} {rng.choice(qualifiers)}{make_thing(rng, things)}"
            value = make_value(rng)
            if key not in keys and value not in values:
                keys[key] = value
                values.add(value)
        return [self.fact(k, keys[k], capital=rng.random() < 0.5) for k in sorted(keys)]

    def close_key(self, rng: random.Random, key: str, vocab: str = "train") -> str:
        """A key one part away from `key` (a random key of `vocab` made the same way): another owner for the
        same thing ("her door code" for "my door code") or another thing for the same owner ("my gate"),
        the qualifier kept. Never `key` itself."""
        owners, qualifiers, things, _, make_thing = VOCABULARIES[vocab]
        owner = max((o for o in owners if key.startswith(o + " ")), key=len, default="")
        if not owner:
            raise ValueError(f"{key!r} does not start with an owner of the {vocab} vocabulary")
        rest = key[len(owner) + 1 :]
        qualifier = max((q for q in qualifiers if q and rest.startswith(q)), key=len, default="")
        thing = rest[len(qualifier) :]
        while True:
            if rng.random() < 0.5:
                close = f"{rng.choice(owners)} {qualifier}{thing}"
            else:
                close = f"{owner} {qualifier}{make_thing(rng, things)}"
            if close != key:
                return close


_LOWER_LEADS = {owner.split(" ")[0] for owners, *_ in VOCABULARIES.values() for owner in owners if owner.islower()}
FORMATS = ("braces", "sentences")


def make_format(name: str, key_len: int = 3, value_len: int = 2) -> FactFormat:
    if name == "braces":
        return BraceFacts(key_len, value_len)
    if name == "sentences":
        return SentenceFacts()
    raise ValueError(f"format must be one of {FORMATS}, got {name!r}")
