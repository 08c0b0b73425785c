"""Tokenizers in the Hugging Face ecosystem, side by side with month 1's own BPE.

- `train_bpe`: a byte-level BPE trained with Hugging Face `tokenizers`, set up like month 1's
  `BytePairTokenizer` (same GPT-2 pre-tokenization regex, same 256-byte starting alphabet,
  no special tokens), so the two can be compared merge by merge.
- `compare_merges`: where the two lists of learned merges agree, where they first diverge,
  and the pair counts at that point (a tie broken differently, or not).
- `chars_per_token`: compression of any tokenizer on prose and on code.
- `apply_chatml`: SmolLM2's ChatML chat template written by hand (graded exercise 2.5; equal
  to `tokenizer.apply_chat_template(..., tokenize=False)`).
- `tokenizer_report`: the whole comparison, as `python -m month2_llm_core tokenizers` prints it.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import regex
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from month1_transformer.tokenizer import GPT2_SPLIT_PATTERN, BytePairTokenizer
from shared.config import add_config_arguments, config_from_args
from shared.corpora import CorpusUnavailable, load_corpus, stdlib_code, stdlib_prose
from shared.errors import UserError

Merge = tuple[bytes, bytes]

# What SmolLM2's template inserts when a conversation does not start with a system message.
SMOLLM2_DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


# -- training a byte-level BPE with the library ----------------------------------------------------
def train_bpe(text: str, vocab_size: int, progress: bool = False) -> Tokenizer:
    """Byte-level BPE with `vocab_size - 256` merges, configured like month 1's BytePairTokenizer.

    The ByteLevel pre-tokenizer with use_regex=True splits on the same GPT-2 pattern as
    month 1; the initial alphabet holds all 256 bytes even if the text does not use them.
    """
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=0,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=progress,
    )
    # One sequence: the whole text, as month 1 splits the whole text with its regex.
    tokenizer.train_from_iterator([text], trainer=trainer)
    return tokenizer


def _byte_decoder() -> dict[str, int]:
    # GPT-2 maps each byte to a printable character; the library stores merges in those characters.
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {ch: b for b, ch in bytes_to_unicode().items()}


def hf_merges(tokenizer: Tokenizer) -> list[Merge]:
    """The learned merges of a byte-level `tokenizers` BPE as (left bytes, right bytes), in order."""
    decode = _byte_decoder()
    merges = json.loads(tokenizer.to_str())["model"]["merges"]
    pairs = [m.split(" ", 1) if isinstance(m, str) else m for m in merges]
    return [(bytes(decode[c] for c in a), bytes(decode[c] for c in b)) for a, b in pairs]


def month1_merges(tokenizer: BytePairTokenizer) -> list[Merge]:
    return [(tokenizer.vocab[a], tokenizer.vocab[b]) for (a, b), _ in tokenizer.merges]


# -- comparing the two merge lists -------------------------------------------------------------------
@dataclass
class MergeComparison:
    n_merges: int
    common_prefix: int  # merges identical in identity and order before the first difference
    same_rank: int  # merges identical at the same rank anywhere in the list
    same_set: int  # merges present in both lists, at any rank
    divergence: dict | None  # the first differing merge and the pair counts at that point

    def format(self) -> str:
        lines = [
            f"merges compared: {self.n_merges}",
            f"identical prefix: {self.common_prefix} merges; same merge at the same rank: {self.same_rank}; "
            f"same merge at any rank: {self.same_set} ({self.same_set / max(1, self.n_merges):.1%})",
        ]
        if self.divergence:
            d = self.divergence
            lines.append(
                f"first difference at merge {d['rank']}: month 1 merged {d['month1']} (count {d['month1_count']}), "
                f"tokenizers merged {d['hf']} (count {d['hf_count']}) -> "
                + ("a tie, broken differently" if d["tie"] else "not a tie")
            )
        return "\n".join(lines)


def pair_counts(text: str, merges: Sequence[Merge]) -> Counter[Merge]:
    """Adjacent-pair counts over `text` after applying `merges` (what BPE training sees at that rank)."""
    tok = BytePairTokenizer(_merge_ids(merges))
    counts: Counter[Merge] = Counter()
    for chunk, freq in Counter(regex.findall(GPT2_SPLIT_PATTERN, text)).items():
        ids = tok.encode(chunk)  # one pre-token chunk: merges never cross chunks
        for a, b in zip(ids, ids[1:]):
            counts[(tok.vocab[a], tok.vocab[b])] += freq
    return counts


def _merge_ids(merges: Sequence[Merge]) -> list[tuple[int, int]]:
    """(bytes, bytes) merges -> month 1's (id, id) merges."""
    ids = {bytes([i]): i for i in range(256)}
    out = []
    for a, b in merges:
        out.append((ids[a], ids[b]))
        ids[a + b] = 256 + len(out) - 1
    return out


def compare_merges(month1: Sequence[Merge], hf: Sequence[Merge], text: str | None = None) -> MergeComparison:
    """Compare two merge lists; with `text`, also count both candidate pairs at the first difference."""
    n = min(len(month1), len(hf))
    prefix = next((i for i in range(n) if month1[i] != hf[i]), n)
    divergence = None
    if prefix < n and text is not None:
        counts = pair_counts(text, month1[:prefix])
        c1, c2 = counts[month1[prefix]], counts[hf[prefix]]
        divergence = {"rank": prefix, "month1": month1[prefix], "hf": hf[prefix],
                      "month1_count": c1, "hf_count": c2, "tie": c1 == c2}
    return MergeComparison(
        n_merges=n,
        common_prefix=prefix,
        same_rank=sum(a == b for a, b in zip(month1[:n], hf[:n])),
        same_set=len(set(month1[:n]) & set(hf[:n])),
        divergence=divergence,
    )


# -- compression -------------------------------------------------------------------------------------
def chars_per_token(encode: Callable[[str], Sequence[int]], text: str) -> float:
    return len(text) / max(1, len(encode(text)))


def hf_encode(tokenizer) -> Callable[[str], list[int]]:
    """An encode function for a `tokenizers.Tokenizer` or a transformers tokenizer (no special tokens)."""
    if isinstance(tokenizer, Tokenizer):
        return lambda text: tokenizer.encode(text, add_special_tokens=False).ids
    return lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]


# -- chat templates ----------------------------------------------------------------------------------
def apply_chatml(messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    """SmolLM2's chat template by hand: ChatML with a default system message.

    Each message becomes "<|im_start|>{role}\\n{content}<|im_end|>\\n"; a conversation that
    does not start with a system message gets SmolLM2's default one first; the generation
    prompt is "<|im_start|>assistant\\n", which the model continues.
    """
    parts = []
    if messages and messages[0]["role"] != "system":
        parts.append(f"<|im_start|>system\n{SMOLLM2_DEFAULT_SYSTEM}<|im_end|>\n")
    parts += [f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages]
    if add_generation_prompt:
        parts.append("<|im_start|>assistant\n")
    return "".join(parts)


def inspect_chat_template(tokenizer, messages: list[dict[str, str]]) -> str:
    """The rendered prompt, and its tokens with the special ones marked, as text."""
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
    special = set(tokenizer.all_special_ids)
    tokens = [f"[{t}]" if i in special else t for i, t in zip(ids, tokenizer.convert_ids_to_tokens(ids))]
    return f"{rendered}\n--- {len(ids)} tokens ---\n{' '.join(tokens)}"


def defuse_special_tokens(tokenizer, text: str) -> str:
    """`text` with each of the tokenizer's added-token strings ("<|im_start|>", ...) broken by a zero-width
    space. A chat template pastes message text in as is and the tokenizer then reads "<|im_start|>system" in
    it as a real turn: defused, text from a document, a tool or a client stays text and opens no turn."""
    for token in sorted(tokenizer.get_added_vocab(), key=len, reverse=True):
        if len(token) > 1:
            text = text.replace(token, token[0] + "\u200b" + token[1:])
    return text


# -- the report --------------------------------------------------------------------------------------
@dataclass
class TokenizerConfig:
    corpus: str = field(default="stdlib", metadata={"help": "training text: stdlib (Python docs prose), "
                                                            "stdlib-code, shakespeare, or a file"})
    train_chars: int = field(default=200_000, metadata={"help": "characters of the corpus to train on"})
    vocab_size: int = field(default=1024, metadata={"help": "vocabulary size of both trained BPEs"})
    eval_chars: int = field(default=100_000, metadata={"help": "characters of prose and of code to measure"})
    model: str = field(default="smollm2", metadata={"help": "pretrained tokenizer to compare with"})

    def __post_init__(self) -> None:
        if self.vocab_size <= 256:
            raise ValueError(f"--vocab-size must exceed the 256 byte tokens, got {self.vocab_size}")
        if min(self.train_chars, self.eval_chars) < 1:
            raise ValueError("--train-chars and --eval-chars must be at least 1")


@dataclass
class TokenizerReport:
    config: TokenizerConfig
    comparison: MergeComparison
    train_seconds: dict[str, float]
    encode_seconds: dict[str, float]
    chars_per_token: dict[str, dict[str, float]]  # tokenizer -> {"prose": x, "code": y}
    chat_template: str

    @property
    def train_speedup(self) -> float:
        return self.train_seconds["month1"] / self.train_seconds["tokenizers"]

    @property
    def encode_speedup(self) -> float:
        return self.encode_seconds["month1"] / self.encode_seconds["tokenizers"]

    def format(self) -> str:
        c = self.config
        lines = [
            f"== BPE on {c.train_chars:,} characters of {c.corpus!r}, vocab {c.vocab_size} "
            f"({c.vocab_size - 256} merges) ==",
            self.comparison.format(),
            f"train: month 1 {self.train_seconds['month1']:.2f} s, tokenizers {self.train_seconds['tokenizers']:.3f} s"
            f" (month 1 time / tokenizers time = {self.train_speedup:.1f})",
            f"encode {c.eval_chars:,} chars of prose: month 1 {self.encode_seconds['month1']:.3f} s, tokenizers "
            f"{self.encode_seconds['tokenizers']:.3f} s (ratio {self.encode_speedup:.2f})",
            "",
            f"== characters per token on {c.eval_chars:,} characters ==",
            f"{'tokenizer':<34} {'prose':>7} {'code':>7}",
        ]
        lines += [f"{name:<34} {v['prose']:>7.2f} {v['code']:>7.2f}" for name, v in self.chars_per_token.items()]
        lines += ["", "== chat template (SmolLM2, ChatML) ==", self.chat_template]
        return "\n".join(lines)


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def tokenizer_report(config: TokenizerConfig, pretrained=None) -> TokenizerReport:
    """Train both BPEs on the same text, compare them, and measure compression against `pretrained`
    (a transformers tokenizer; loaded from config.model when None)."""
    text = load_corpus(config.corpus, max_chars=config.train_chars)
    ours, t_ours = _timed(lambda: BytePairTokenizer.train(text, config.vocab_size))
    hf, t_hf = _timed(lambda: train_bpe(text, config.vocab_size))
    comparison = compare_merges(month1_merges(ours), hf_merges(hf), text)

    prose, code = stdlib_prose(config.eval_chars), stdlib_code(config.eval_chars)
    # Encoding speed on fresh objects, so month 1's chunk cache starts empty as the library's does.
    fresh = BytePairTokenizer.from_dict(ours.to_dict())
    _, e_ours = _timed(lambda: fresh.encode(prose))
    _, e_hf = _timed(lambda: hf.encode(prose))

    if pretrained is None:
        from transformers import AutoTokenizer

        from month2_llm_core.hub import explain_load_errors
        from shared.models import chat_model_path

        with explain_load_errors(config.model):
            pretrained = AutoTokenizer.from_pretrained(chat_model_path(config.model))
    encoders = {
        f"month 1 BPE ({config.vocab_size})": ours.encode,
        f"tokenizers BPE ({config.vocab_size})": hf_encode(hf),
        f"{config.model} ({len(pretrained)})": hf_encode(pretrained),
    }
    cpt = {name: {"prose": chars_per_token(enc, prose), "code": chars_per_token(enc, code)}
           for name, enc in encoders.items()}
    messages = [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "4."},
                {"role": "user", "content": "And 3 + 3?"}]
    return TokenizerReport(config, comparison, {"month1": t_ours, "tokenizers": t_hf},
                           {"month1": e_ours, "tokenizers": e_hf}, cpt, inspect_chat_template(pretrained, messages))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, TokenizerConfig)


def main(args: argparse.Namespace) -> None:
    cfg = config_from_args(TokenizerConfig, args)
    try:
        report = tokenizer_report(cfg)
    except CorpusUnavailable as err:
        raise UserError(f"--corpus: {err}") from None
    except UnicodeDecodeError as err:
        raise UserError(f"--corpus {cfg.corpus}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    print(report.format())
