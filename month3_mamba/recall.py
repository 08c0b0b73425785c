"""A long-document recall task in plain text: facts scattered through filler, asked at the end.

A document is English prose (the Python docs that ship offline) with facts written into it as

    ... the binary operation performed {qzv: 47} by augmented assignment is ...

and ends with one question per fact, in random order, each answered right after it:

    {qzv? 47}{abc? 03}...

Byte-level: a key is `key_len` lowercase letters, a value `value_len` digits, so chance is
10^-value_len per answer. Training puts loss only on the answer digits (every query of every
document: many supervised positions per sequence); evaluation reads the document through a
model's streaming state in chunks, then scores the answers. Teacher-forced answers that are
all correct are exactly what greedy decoding would write, so one forward pass scores them.
Braces never occur in the filler, so `{` marks a fact or a question.
"""

from __future__ import annotations

import random
import string
import time
from dataclasses import dataclass, field, replace
from functools import lru_cache

import torch
from torch import Tensor

from month3_mamba.checks import require_at_least
from shared.corpora import stdlib_prose


@dataclass
class RecallTaskConfig:
    key_len: int = field(default=3, metadata={"help": "letters per key"})
    value_len: int = field(default=2, metadata={"help": "digits per value"})
    n_facts: int = field(default=4, metadata={"help": "facts (and questions) per document, at most"})
    seq_len: int = field(default=20, metadata={"help": "training document length in bytes at the start"})
    max_seq_len: int = field(default=512, metadata={"help": "training length at the end of the length curriculum"})
    ramp_fraction: float = field(default=0.6, metadata={"help": "fraction of steps over which the length grows"})
    batch_tokens: int = field(default=1024, metadata={"help": "bytes per batch (batch size = this / length)"})

    def __post_init__(self) -> None:
        require_at_least(self, 1, "key_len", "value_len", "n_facts", "batch_tokens")
        shortest = min_length(1, self) - 1  # a training document is seq_len + 1 bytes (inputs and targets)
        if self.seq_len < shortest:
            raise ValueError(f"seq_len must be at least {shortest} (one fact and its question), got {self.seq_len}")
        if self.n_facts > distinct_keys(self):
            raise ValueError(f"n_facts must be at most {distinct_keys(self):,} (keys of {self.key_len} letters)")
        if self.max_seq_len < self.seq_len:
            raise ValueError(f"max_seq_len ({self.max_seq_len}) must be at least seq_len ({self.seq_len})")
        if not 0 <= self.ramp_fraction <= 1:
            raise ValueError(f"ramp_fraction must be between 0 and 1, got {self.ramp_fraction}")


@dataclass(frozen=True)
class Fact:
    key: str
    value: str

    @property
    def statement(self) -> str:
        return "{" + self.key + ": " + self.value + "}"

    @property
    def question(self) -> str:
        return "{" + self.key + "? "

    @property
    def answer(self) -> str:
        return self.value + "}"


@lru_cache(maxsize=1)
def filler_text() -> str:
    """The offline prose corpus, ASCII only, with the braces that mark facts removed."""
    return "".join(ch for ch in stdlib_prose() if ch.isascii() and ch not in "{}")


def filler(rng: random.Random, n: int) -> str:
    """n bytes of prose from a random place in the corpus (wrapping round for long documents)."""
    corpus = filler_text()
    start = rng.randrange(len(corpus))
    if start + n <= len(corpus):
        return corpus[start : start + n]
    return (corpus[start:] + corpus * (1 + n // len(corpus)))[:n]


def min_length(n_facts: int, cfg: RecallTaskConfig) -> int:
    """The shortest document that holds n_facts facts and their questions (with no prose at all)."""
    fact = Fact("k" * cfg.key_len, "0" * cfg.value_len)
    return n_facts * len(fact.statement + fact.question + fact.answer)


def distinct_keys(cfg: RecallTaskConfig) -> int:
    return len(string.ascii_lowercase) ** cfg.key_len


def check_fits(length: int, n_facts: int, cfg: RecallTaskConfig) -> None:
    """ValueError, saying what would fit, unless n_facts distinct facts and their questions fit in `length` bytes."""
    if n_facts > distinct_keys(cfg):
        raise ValueError(f"{n_facts:,} facts: there are only {distinct_keys(cfg):,} keys of {cfg.key_len} letters")
    if length < min_length(n_facts, cfg):
        raise ValueError(f"a document of {length:,} bytes cannot hold {n_facts} fact(s) and their questions: "
                         f"give at least {min_length(n_facts, cfg):,} bytes or fewer facts")


def random_facts(rng: random.Random, n: int, cfg: RecallTaskConfig) -> list[Fact]:
    keys: set[str] = set()
    while len(keys) < n:
        keys.add("".join(rng.choices(string.ascii_lowercase, k=cfg.key_len)))
    return [Fact(k, "".join(rng.choices(string.digits, k=cfg.value_len))) for k in sorted(keys)]


def questions_text(facts: list[Fact]) -> str:
    return "".join(f.question + f.answer for f in facts)


def make_document(rng: random.Random, length: int, facts: list[Fact]) -> tuple[str, list[Fact]]:
    """(text of exactly `length` bytes, the facts in question order): prose with the facts
    at random places, then the questions with their answers."""
    order = facts[:]
    rng.shuffle(order)
    tail = questions_text(order)
    n_filler = length - len(tail) - sum(len(f.statement) for f in facts)
    if n_filler < 0:
        raise ValueError(f"length {length} is too short for {len(facts)} facts")
    prose = filler(rng, n_filler)
    cuts = sorted(rng.randint(0, n_filler) for _ in facts)
    placed = rng.sample(facts, len(facts))
    pieces, prev = [], 0
    for cut, fact in zip(cuts, placed):
        pieces += [prose[prev:cut], fact.statement]
        prev = cut
    pieces += [prose[prev:], tail]
    return "".join(pieces), order


def answer_mask(text: str, facts: list[Fact]) -> list[int]:
    """Positions i whose next byte is an answer digit (where the loss and the score look)."""
    n_tail = len(questions_text(facts))
    positions, offset = [], len(text) - n_tail
    for f in facts:
        start = offset + len(f.question)  # first digit of the answer
        positions += range(start - 1, start - 1 + len(f.value))
        offset += len(f.question) + len(f.answer)
    return positions


def encode(text: str) -> list[int]:
    return list(text.encode("ascii"))


def max_facts(length: int, cfg: RecallTaskConfig) -> int:
    """How many facts fit: cfg.n_facts, or fewer in a short document (1 below 40 bytes)."""
    per_fact = len(Fact("k" * cfg.key_len, "0" * cfg.value_len).statement) * 2 + 2
    return max(1, min(cfg.n_facts, length // per_fact))


def training_example(rng: random.Random, length: int, cfg: RecallTaskConfig) -> tuple[Tensor, Tensor]:
    """(x, y): bytes and next-byte targets, -1 everywhere except at the answers' digits."""
    n_facts = rng.randint(1, max_facts(length, cfg))  # easy documents all along
    text, order = make_document(rng, length + 1, random_facts(rng, n_facts, cfg))
    ids = torch.tensor(encode(text))
    y = torch.full((length,), -1, dtype=torch.long)
    pos = torch.tensor(answer_mask(text, order))
    y[pos] = ids[pos + 1]
    return ids[:-1], y


class RecallBatches:
    """`get_batch(split, generator)` for shared.training.Trainer, with a curriculum: documents
    grow geometrically from cfg.seq_len bytes (one fact next to its question: the copy is easy
    to discover) to cfg.max_seq_len over the first ramp_fraction of max_steps, and hold more
    facts as they grow, at a constant number of bytes per batch. Without it a small Mamba
    stayed at chance for hundreds of steps. `train_step` counts train batches (set it when
    resuming from a checkpoint)."""

    def __init__(self, cfg: RecallTaskConfig, max_steps: int) -> None:
        self.cfg = cfg
        self.max_steps = max_steps
        self.train_step = 0

    def length_at(self, step: int) -> int:
        cfg = self.cfg
        progress = min(1.0, step / max(1, int(cfg.ramp_fraction * self.max_steps)))
        return round(cfg.seq_len * (cfg.max_seq_len / cfg.seq_len) ** progress)

    def __call__(self, split: str, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        if split == "train":
            length = self.length_at(self.train_step)
            self.train_step += 1
        else:  # evaluation: the final length, fresh facts every time (the task has no fixed data)
            length = self.cfg.max_seq_len
        rng = random.Random(int(torch.randint(2**62, (1,), generator=generator)))
        batch = [training_example(rng, length, self.cfg) for _ in range(max(1, self.cfg.batch_tokens // length))]
        xs, ys = zip(*batch)
        return torch.stack(xs), torch.stack(ys)


@torch.no_grad()
def prefill(model, texts: list[str], chunk: int = 2048) -> list:
    """Read equal-length texts side by side through the model's streaming state, `chunk` bytes
    at a time; returns the state. Memory: the state plus one chunk, whatever the length."""
    state = model.new_state(len(texts))
    for start in range(0, len(texts[0]), chunk):
        model(torch.tensor([encode(t[start : start + chunk]) for t in texts]), state=state)
    return state


@torch.no_grad()
def question_logits(model, texts: list[str], body: int, chunk: int) -> Tensor:
    """Logits over the questions part (texts[:, body:]) after reading the body.

    A streaming model (it has `new_state`) reads the body in chunks and carries its state.
    Month 1's GPT sees at most its block_size: with learned positions the last block_size
    bytes (what it would get in a sliding window); with RoPE (nothing learned per position)
    the whole text at once, in a copy of the model with a block_size that fits."""
    if hasattr(model, "new_state"):
        state = prefill(model, [text[:body] for text in texts], chunk)
        return model(torch.tensor([encode(text[body:]) for text in texts]), state=state)[0]
    length = len(texts[0])
    if model.cfg.pos_enc == "learned":
        window = min(length, model.cfg.block_size)
    else:
        window = length
        if length > model.cfg.block_size:
            longer = type(model)(replace(model.cfg, block_size=length))
            longer.load_state_dict(model.state_dict())
            model = longer.eval()
    ids = torch.tensor([encode(text[length - window :]) for text in texts])
    return model(ids)[0][:, window - (length - body) :]


@torch.no_grad()
def evaluate_recall(
    model,
    length: int,
    cfg: RecallTaskConfig,
    n_docs: int = 8,
    n_facts: int | None = None,
    chunk: int = 2048,
    seed: int = 0,
) -> dict:
    """Exact-match accuracy of the answers over n_docs documents of `length` bytes read in
    streaming chunks (documents side by side), with the time it took."""
    model.eval()
    rng = random.Random(seed)
    n_facts = n_facts or max_facts(length, cfg)
    docs = [make_document(rng, length, random_facts(rng, n_facts, cfg)) for _ in range(n_docs)]
    n_tail = len(questions_text(docs[0][1]))
    body = length - n_tail
    start = time.perf_counter()
    logits = question_logits(model, [text for text, _ in docs], body, chunk)
    seconds = time.perf_counter() - start
    correct_digits = correct_answers = 0
    for row, (text, order) in enumerate(docs):
        pos = answer_mask(text, order)
        pred = logits[row, [p - body for p in pos]].argmax(-1).tolist()
        hits = [guess == ord(text[p + 1]) for guess, p in zip(pred, pos)]
        correct_digits += sum(hits)
        correct_answers += sum(all(hits[i : i + cfg.value_len]) for i in range(0, len(hits), cfg.value_len))
    total_answers = n_docs * n_facts
    return {
        "length": length,
        "accuracy": correct_answers / total_answers,
        "digit_accuracy": correct_digits / (total_answers * cfg.value_len),
        "answers": total_answers,
        "seconds": seconds,
        "tokens_per_s": n_docs * length / seconds,
    }
