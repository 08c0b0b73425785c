"""A long-document recall task in plain text: facts scattered through prose, asked at the end.

A document is prose from an offline corpus (prose.py) with facts written into it in one of the
memory formats of facts.py, and ends with one question per fact, in random order, each answered
right after it. The first format, `braces`:

    ... the binary operation performed {qzv: 47} by augmented assignment is ...
    {qzv? 47}{abc? 03}...

and the one month 6 needs, `sentences` (a plain sentence between words; a fixed question
template; the answer ends with the terminator `.`, so it can have any length):

    ... is the value of the expression. My employee number is 4417. The result ...
    Q: what is my employee number?
    A: 4417.

Byte-level. Training puts loss only on the answers (every question of every document: many
supervised positions per sequence; `braces` scores its digits, `sentences` the value and its
terminator); evaluation reads the document through a model's streaming state in chunks, then
scores the answers. Teacher-forced answers that are all correct are exactly what greedy
decoding would write (and, with the terminator, where it would stop), so one forward pass
scores them.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field, fields, replace

import torch
from torch import Tensor

from month3_mamba.checks import require_at_least
from month3_mamba.facts import FORMATS, VOCABS, BraceFacts, Fact, FactFormat, make_format
from month3_mamba.prose import CORPORA, filler

QUESTION_MODES = ("sequential", "independent")


@dataclass
class RecallTaskConfig:
    format: str = field(default="braces", metadata={"help": "memory format: {key: value} or plain sentences "
                                                            "(facts.py)", "choices": FORMATS})
    corpus: str = field(default="pydoc", metadata={"help": "prose the facts are written into (prose.py)",
                                                   "choices": CORPORA})
    key_len: int = field(default=3, metadata={"help": "letters per key (braces)"})
    value_len: int = field(default=2, metadata={"help": "digits per value (braces)"})
    n_facts: int = field(default=4, metadata={"help": "facts (and questions) per document, at most"})
    seq_len: int = field(default=20, metadata={"help": "training document length in bytes at the start"})
    max_seq_len: int = field(default=512, metadata={"help": "training length at the end of the length curriculum"})
    ramp_fraction: float = field(default=0.6, metadata={"help": "fraction of steps over which the length grows"})
    batch_tokens: int = field(default=1024, metadata={"help": "bytes per batch (batch size = this / length)"})
    questions: str = field(default="sequential", metadata={
        "help": "training questions: all at the end of the document, one after another (sequential: a model can "
                "answer the last by elimination), or each on its own from the state after the document "
                "(independent: how a memory is asked)", "choices": QUESTION_MODES})
    untold: float = field(default=0.0, metadata={
        "help": "share of training questions about a key the history never stated, answered 'unknown.' "
                "(sentences format, independent questions): a memory that says so instead of guessing"})
    untold_close: float = field(default=0.0, metadata={
        "help": "share of those untold questions whose key is one part away from a told key (another owner or "
                "thing: 'her door code' beside 'my door code'), the case random keys rarely show"})

    def __post_init__(self) -> None:
        if self.questions not in QUESTION_MODES:
            raise ValueError(f"questions must be one of {QUESTION_MODES}, got {self.questions!r}")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {self.format!r}")
        if self.corpus not in CORPORA:
            raise ValueError(f"corpus must be one of {CORPORA}, got {self.corpus!r}")
        require_at_least(self, 1, "key_len", "value_len", "n_facts", "batch_tokens")
        shortest = min_length(1, self) - 1  # a training document is seq_len + 1 bytes (inputs and targets)
        if self.seq_len < shortest:
            raise ValueError(f"seq_len must be at least {shortest} (one fact and its question), got {self.seq_len}")
        fmt = self.fact_format
        if isinstance(fmt, BraceFacts) and self.n_facts > fmt.distinct_keys():
            raise ValueError(f"n_facts must be at most {fmt.distinct_keys():,} (keys of {self.key_len} letters)")
        if self.max_seq_len < self.seq_len:
            raise ValueError(f"max_seq_len ({self.max_seq_len}) must be at least seq_len ({self.seq_len})")
        if not 0 <= self.ramp_fraction <= 1:
            raise ValueError(f"ramp_fraction must be between 0 and 1, got {self.ramp_fraction}")
        if not 0 <= self.untold < 1:
            raise ValueError(f"untold must be at least 0 and below 1, got {self.untold}")
        if self.untold and (self.format != "sentences" or self.questions != "independent"):
            raise ValueError("untold questions need --format sentences and --questions independent (only the "
                             "sentence format has an answer for a key never stated)")
        if not 0 <= self.untold_close <= 1:
            raise ValueError(f"untold_close must be between 0 and 1, got {self.untold_close}")
        if self.untold_close and not self.untold:
            raise ValueError("untold_close is a share of the untold questions: give --untold too")

    @property
    def fact_format(self) -> FactFormat:
        return make_format(self.format, self.key_len, self.value_len)


def min_length(n_facts: int, cfg: RecallTaskConfig, questions: str | None = None) -> int:
    """The shortest document that surely holds n_facts facts (with no prose at all), and their questions
    unless they are asked independently (then the document is the history alone)."""
    fmt = cfg.fact_format
    per_fact = fmt.max_statement_bytes if (questions or cfg.questions) == "independent" else fmt.max_fact_bytes
    return n_facts * per_fact


def fact_bytes(facts: list[Fact]) -> int:
    return sum(len(f.statement + f.asked) for f in facts)


def check_fits(length: int, n_facts: int, cfg: RecallTaskConfig, questions: str | None = None) -> None:
    """ValueError, saying what would fit, unless n_facts distinct facts (and their questions, when they
    are part of the document) fit in `length` bytes."""
    fmt = cfg.fact_format
    if isinstance(fmt, BraceFacts) and n_facts > fmt.distinct_keys():
        raise ValueError(f"{n_facts:,} facts: there are only {fmt.distinct_keys():,} keys of {cfg.key_len} letters")
    shortest = min_length(n_facts, cfg, questions)
    if length < shortest:
        what = "" if (questions or cfg.questions) == "independent" else " and their questions"
        raise ValueError(f"a document of {length:,} bytes cannot hold {n_facts} fact(s){what}: "
                         f"give at least {shortest:,} bytes or fewer facts")


def random_facts(rng: random.Random, n: int, cfg: RecallTaskConfig, vocab: str = "train") -> list[Fact]:
    return cfg.fact_format.random_facts(rng, n, vocab)


def questions_text(facts: list[Fact]) -> str:
    return "".join(f.asked for f in facts)


def make_document(rng: random.Random, length: int, facts: list[Fact], corpus: str = "pydoc",
                  snap_to_words: bool = False, with_questions: bool = True) -> tuple[str, list[Fact]]:
    """(text of exactly `length` bytes, the facts in question order): prose with the facts
    at random places (with `snap_to_words`, moved on to the start of the next word), then
    (unless `with_questions` is false) the questions with their answers."""
    order = facts[:]
    rng.shuffle(order)
    tail = questions_text(order) if with_questions else ""
    n_filler = length - len(tail) - sum(len(f.statement) for f in facts)
    if n_filler < 0:
        raise ValueError(f"length {length} is too short for {len(facts)} facts")
    prose = filler(rng, n_filler, corpus)
    cuts = sorted(rng.randint(0, n_filler) for _ in facts)
    if snap_to_words:
        cuts = [word_start(prose, cut) for cut in cuts]
    placed = rng.sample(facts, len(facts))
    pieces, prev = [], 0
    for cut, fact in zip(cuts, placed):
        pieces += [prose[prev:cut], fact.statement]
        prev = cut
    pieces += [prose[prev:], tail]
    return "".join(pieces), order


def word_start(text: str, i: int) -> int:
    """The first position at or after i that follows whitespace (i itself if there is none)."""
    if i == 0 or text[i - 1].isspace():
        return i
    for j in range(i, len(text)):
        if text[j].isspace():
            return j + 1
    return i


def answer_spans(text: str, facts: list[Fact]) -> list[range]:
    """Per question (in order): the positions i whose next byte is a scored answer byte."""
    offset, spans = len(text) - len(questions_text(facts)), []
    for f in facts:
        start = offset + len(f.question)  # first byte of the answer
        spans.append(range(start - 1, start - 1 + len(f.answer)))
        offset += len(f.asked)
    return spans


def answer_mask(text: str, facts: list[Fact]) -> list[int]:
    """Positions i whose next byte is a scored answer byte (where the loss and the score look)."""
    return [i for span in answer_spans(text, facts) for i in span]


def encode(text: str) -> list[int]:
    return list(text.encode("ascii"))


def max_facts(length: int, cfg: RecallTaskConfig) -> int:
    """How many facts a training document of `length` bytes holds at most: cfg.n_facts, fewer when short."""
    fmt = cfg.fact_format
    if isinstance(fmt, BraceFacts):
        per_fact = len(fmt.fact("k" * cfg.key_len, "0" * cfg.value_len).statement) * 2 + 2
    else:
        per_fact = 100  # a typical sentence fact with its question and answer is ~70 bytes
    return max(1, min(cfg.n_facts, length // per_fact))


def training_example(rng: random.Random, length: int, cfg: RecallTaskConfig) -> tuple[Tensor, Tensor]:
    """Sequential questions: (x, y), bytes and next-byte targets, -1 everywhere except at the answers."""
    n_facts = rng.randint(1, max_facts(length, cfg))  # easy documents all along
    facts = random_facts(rng, n_facts, cfg)
    while len(facts) > 1 and fact_bytes(facts) > length + 1:  # long sentence facts: keep what fits
        facts.pop()
    fmt = cfg.fact_format
    text, order = make_document(rng, length + 1, facts, cfg.corpus, fmt.snap_to_words)
    ids = torch.tensor(encode(text))
    y = torch.full((length,), -1, dtype=torch.long)
    pos = torch.tensor(answer_mask(text, order))
    y[pos] = ids[pos + 1]
    return ids[:-1], y


def independent_example(rng: random.Random, length: int, cfg: RecallTaskConfig) -> tuple[str, list[Fact]]:
    """Independent questions: (a history of `length` bytes with facts in it, max_facts questions about
    them, each fact drawn at random: asked in no fixed set, so no answer follows by elimination). With
    cfg.untold, that share of the questions asks a key the history never stated (answer: 'unknown.'), and
    cfg.untold_close of those a key one part away from a told one."""
    n_facts = rng.randint(1, max_facts(length, cfg))
    facts = random_facts(rng, n_facts, cfg)
    while len(facts) > 1 and sum(len(f.statement) for f in facts) > length:
        facts.pop()
    text, _ = make_document(rng, length, facts, cfg.corpus, cfg.fact_format.snap_to_words, with_questions=False)
    n_questions = max_facts(length, cfg)
    if not cfg.untold:  # (the draws of the runs before untold questions existed, unchanged)
        return text, [rng.choice(facts) for _ in range(n_questions)]
    return text, [untold_question(rng, facts, cfg) if rng.random() < cfg.untold else rng.choice(facts)
                  for _ in range(n_questions)]


def untold_question(rng: random.Random, told: list[Fact], cfg: RecallTaskConfig) -> Fact:
    # (no draw for closeness when untold_close is 0: phase 3's data stream stays as it was)
    close = bool(cfg.untold_close) and rng.random() < cfg.untold_close
    return untold_facts(rng, 1, told, cfg, close=close)[0]


def untold_facts(rng: random.Random, n: int, told: list[Fact], cfg: RecallTaskConfig,
                 vocab: str = "train", close: bool = False) -> list[Fact]:
    """n questions about distinct keys of `vocab` that none of `told` states, each answered 'unknown.'.
    `close`: each key one part away from a told key (SentenceFacts.close_key: another owner or thing),
    the hard case; otherwise random keys, which rarely share a told key's words."""
    fmt, keys = cfg.fact_format, {f.key for f in told}
    out: list[Fact] = []
    while len(out) < n:
        if close:
            key = fmt.close_key(rng, rng.choice(told).key, vocab)
        else:
            key = fmt.random_facts(rng, 1, vocab)[0].key
        if key not in keys:
            keys.add(key)
            out.append(fmt.untold(key))
    return out


def question_rows(asked: list[Fact], width: int | None = None) -> tuple[Tensor, Tensor]:
    """Each fact's question and answer as one row, right-padded with spaces to `width` (default: the
    longest): (ids (k, width), next-byte targets, -1 except at the answer bytes)."""
    width = width or max(len(f.question + f.answer) for f in asked)
    ids = torch.full((len(asked), width), ord(" "), dtype=torch.long)
    y = torch.full((len(asked), width), -1, dtype=torch.long)
    for row, f in enumerate(asked):
        text = encode(f.question + f.answer)
        ids[row, : len(text)] = torch.tensor(text)
        start = len(f.question)
        y[row, start - 1 : start - 1 + len(f.answer)] = torch.tensor(text[start:])
    return ids, y


def expand_state(state: list, k: int) -> list:
    """Each row of a streaming state repeated k times (rows 0..k-1 from row 0, ...): k questions from
    one reading. Differentiable: in training the gradient of every question flows back into the reading."""
    out = []
    for layer in state:
        values = {f.name: getattr(layer, f.name) for f in fields(layer)}
        out.append(type(layer)(**{name: v.repeat_interleave(k, 0) if isinstance(v, Tensor) else v
                                  for name, v in values.items()}))
    return out


def independent_loss(model, batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    """Mean cross-entropy of the answers, each question asked from the state after its history (the
    history read once); for month 1's GPT, each question after its own copy of the history."""
    history, q, y = batch
    k = q.size(0) // history.size(0)
    if not hasattr(model, "new_state"):
        x = torch.cat([history.repeat_interleave(k, 0), q], 1)
        targets = torch.cat([torch.full_like(history.repeat_interleave(k, 0), -1), y], 1)
        return model(x[:, -model.cfg.block_size :], targets[:, -model.cfg.block_size :])[1]
    state = model.new_state(history.size(0))
    model(history, state=state)
    return model(q, y, state=expand_state(state, k))[1]


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
        n_docs = max(1, self.cfg.batch_tokens // length)
        if self.cfg.questions == "independent":  # (histories, question rows, their targets): see independent_loss
            docs = [independent_example(rng, length, self.cfg) for _ in range(n_docs)]
            q, y = question_rows([f for _, asked in docs for f in asked])
            return torch.stack([torch.tensor(encode(text)) for text, _ in docs]), q, y
        batch = [training_example(rng, length, self.cfg) for _ in range(n_docs)]
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
def answer_logits(model, histories: list[str], q: Tensor, chunk: int) -> Tensor:
    """Logits over question rows `q` (k rows per history, in order), each asked on its own after its
    history: a streaming model reads each history once and asks every question from a copy of the state."""
    k = q.size(0) // len(histories)
    if hasattr(model, "new_state"):
        return model(q, state=expand_state(prefill(model, histories, chunk), k))[0]
    texts = [histories[row // k] + bytes(q[row].tolist()).decode("ascii") for row in range(q.size(0))]
    return question_logits(model, texts, len(histories[0]), chunk)


@torch.no_grad()
def evaluate_recall(
    model,
    length: int,
    cfg: RecallTaskConfig,
    n_docs: int = 8,
    n_facts: int | None = None,
    chunk: int = 2048,
    seed: int = 0,
    corpus: str | None = None,
    vocab: str = "train",
    questions: str = "independent",
    untold: int = 0,
    close_untold: bool = False,
) -> dict:
    """Exact-match accuracy of the answers over n_docs documents of `length` bytes of `corpus`
    (default: the task's own) read in streaming chunks (documents side by side), with a 95%
    Wilson interval and the time it took. `vocab`: the sentence format's key and value vocabulary.

    `questions="independent"`: the document is the history alone (`length` bytes), and every fact is
    asked on its own from the state after it, as a memory is asked. `"sequential"`: the document
    ends with all the questions, one after another, each scored after the earlier ones and their
    answers (the first task's scoring: with every fact asked once, the last answer can be found by
    elimination, so it overstates a memory).

    `untold` (independent questions, sentence format): also that many keys per document that it never
    stated, each scored right when answered 'unknown.' (`untold_accuracy`); drawn after the documents, so
    the documents and the told score are the same with or without them. `close_untold`: those keys one part
    away from a told key ("her door code" beside a told "my door code")."""
    if untold and questions != "independent":
        raise ValueError("untold questions are asked independently: pass questions='independent'")
    if vocab not in VOCABS:
        raise ValueError(f"vocab must be one of {VOCABS}, got {vocab!r}")
    if questions not in QUESTION_MODES:
        raise ValueError(f"questions must be one of {QUESTION_MODES}, got {questions!r}")
    model.eval()
    rng = random.Random(seed)
    n_facts = n_facts or max_facts(length, cfg)
    snap, sequential = cfg.fact_format.snap_to_words, questions == "sequential"
    docs = [make_document(rng, length, random_facts(rng, n_facts, cfg, vocab), corpus or cfg.corpus, snap,
                          with_questions=sequential) for _ in range(n_docs)]
    start = time.perf_counter()
    if sequential:
        body = length - max(len(questions_text(order)) for _, order in docs)  # where the first questions part starts
        logits = question_logits(model, [text for text, _ in docs], body, chunk)
        targets = torch.full(logits.shape[:2], -1, dtype=torch.long)
        for row, (text, order) in enumerate(docs):
            for p in answer_mask(text, order):
                targets[row, p - body] = ord(text[p + 1])
        rows = [(row, targets[row], [p - body for p in span]) for row, (text, order) in enumerate(docs)
                for span in answer_spans(text, order)]
    else:
        urng = random.Random(f"untold-{seed}")
        asked = [order + untold_facts(urng, untold, order, cfg, vocab, close_untold) for _, order in docs]
        q, y = question_rows([f for facts in asked for f in facts])
        logits = answer_logits(model, [text for text, _ in docs], q, chunk)
        rows = [(row, y[row], (y[row] >= 0).nonzero().flatten().tolist()) for row in range(q.size(0))]
    seconds = time.perf_counter() - start
    correct_bytes = total_bytes = correct_answers = said_unknown = 0
    for row, target, positions in rows:
        right = (logits[row, positions].argmax(-1) == target[positions]).tolist()
        if untold and row % (n_facts + untold) >= n_facts:  # a key never stated
            said_unknown += all(right)
            continue
        correct_bytes += sum(right)
        total_bytes += len(right)
        correct_answers += all(right)
    total_answers = n_docs * n_facts
    low, high = wilson_interval(correct_answers, total_answers)
    untold_scores = {}
    if untold:
        untold_scores = {"untold": n_docs * untold, "untold_close": close_untold,
                         "untold_accuracy": said_unknown / (n_docs * untold),
                         "untold_ci95": list(wilson_interval(said_unknown, n_docs * untold))}
    return {
        "length": length,
        "facts": n_facts,
        "questions": questions,
        "accuracy": correct_answers / total_answers,
        "correct": correct_answers,
        "answers": total_answers,
        "ci95": [low, high],
        "byte_accuracy": correct_bytes / total_bytes,
        "corpus": corpus or cfg.corpus,
        "vocab": vocab,
        "seconds": seconds,
        "tokens_per_s": n_docs * length / seconds,
        **untold_scores,
    }


def untold_note(result: dict) -> str:
    """', untold keys answered unknown 0.750' where evaluate_recall asked some, else '' (for a printed line)."""
    return f", untold keys answered unknown {result['untold_accuracy']:.3f}" if "untold" in result else ""


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for k successes in n trials (95% at z = 1.96): unlike p +- z sqrt(p(1-p)/n)
    it stays inside [0, 1] and does not collapse to a point at 0 or n successes."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
