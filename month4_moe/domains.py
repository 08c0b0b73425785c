"""The four-domain mixture (code / math / text / chat), offline on every machine, byte-level.

| domain | training text; held-out split ("val") | second evaluation set ("other"), written differently |
| --- | --- | --- |
| code | the standard library's .py files; every 10th file held out | tqdm's and packaging's sources |
| math | generated problems with worked answers (synth.math_problems); other seeds | a second generator's Q/A problems |
| text | the Python documentation topics (pydoc_data); every 10th topic held out | Python's LICENSE.txt |
| chat | generated ChatML dialogues (synth.chat_dialogues); other seeds | hand-written dialogues (chat_other.txt) |

Text becomes UTF-8 bytes (vocabulary 256: month 1's byte-level BPE tokenizer without merges), so no
domain has words the tokenizer never saw. A training batch holds the same number of rows of each
domain; a row is one random window of its domain.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from month1_transformer.tokenizer import BytePairTokenizer
from month4_moe.synth import chat_dialogues, chat_other, math_problems, math_problems_other
from shared.corpora import stdlib_dir, stdlib_source_files
from shared.errors import UserError
from shared.training import GetBatch

DOMAINS = ("code", "math", "text", "chat")
SPLITS = ("train", "val", "other")
OTHER_CODE_PACKAGES = ("tqdm", "packaging")


@dataclass
class DomainConfig:
    train_chars: int = field(default=400_000, metadata={"help": "training characters per domain"})
    eval_chars: int = field(default=40_000, metadata={"help": "characters per domain in each evaluation set"})
    domains: str = field(default=",".join(DOMAINS), metadata={
        "help": "comma-separated domains to train on (btx trains a branch on one)"})

    def __post_init__(self) -> None:
        if self.train_chars < 1000 or self.eval_chars < 1000:
            raise ValueError("train_chars and eval_chars must be at least 1000")
        unknown = sorted(set(self.domain_list()) - set(DOMAINS))
        if unknown or not self.domain_list():
            raise ValueError(f"domains: unknown {unknown or 'none given'}; choose from {', '.join(DOMAINS)}")

    def domain_list(self) -> list[str]:
        return [d.strip() for d in self.domains.split(",") if d.strip()]


def tokenizer() -> BytePairTokenizer:
    """Byte level: month 1's BPE with no merges (ids = UTF-8 bytes)."""
    return BytePairTokenizer()


def encode(text: str) -> Tensor:
    """UTF-8 bytes as token ids, what tokenizer().encode gives, without Python's per-chunk loop."""
    return torch.frombuffer(bytearray(text.encode("utf-8")), dtype=torch.uint8).long()


_stdlib_files = functools.cache(stdlib_source_files)  # one walk of the standard library per process


def _files_text(paths: list[Path], n_chars: int) -> str:
    parts, total = [], 0
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        parts.append(text)
        total += len(text)
        if total >= n_chars:
            break
    return "\n".join(parts)[:n_chars]


def _package_sources(names: tuple[str, ...]) -> list[Path]:
    files = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise UserError(f"the code domain's second evaluation set reads the installed package {name!r}, "
                            "which is missing; install the project (pip install -e .)")
        files += sorted(Path(next(iter(spec.submodule_search_locations))).rglob("*.py"))
    return files


def domain_text(domain: str, split: str, n_chars: int) -> str:
    """Up to n_chars of one domain's split ('train', 'val' or 'other')."""
    if domain == "code":
        files = _stdlib_files()
        chosen = {"train": [f for i, f in enumerate(files) if i % 10],
                  "val": files[::10], "other": None}[split]
        return _files_text(chosen if chosen is not None else _package_sources(OTHER_CODE_PACKAGES), n_chars)
    if domain == "math":
        if split == "other":
            return math_problems_other(n_chars, seed=7)
        return math_problems(n_chars, seed=0 if split == "train" else 1)
    if domain == "text":
        if split == "other":
            return (stdlib_dir() / "LICENSE.txt").read_text(encoding="utf-8")[:n_chars]
        from pydoc_data.topics import topics

        keys = sorted(topics)
        chosen = [k for i, k in enumerate(keys) if (i % 10 == 0) == (split == "val")]
        return "\n\n".join(topics[k].strip() for k in chosen)[:n_chars]
    if domain == "chat":
        if split == "other":
            return chat_other()[:n_chars]
        return chat_dialogues(n_chars, seed=0 if split == "train" else 1)
    raise ValueError(f"unknown domain {domain!r}")


@dataclass
class DomainData:
    """Token ids per split and domain: ids[split][domain]."""

    ids: dict[str, dict[str, Tensor]]

    @classmethod
    def build(cls, cfg: DomainConfig, splits: tuple[str, ...] = SPLITS) -> DomainData:
        ids = {}
        for split in splits:
            n = cfg.train_chars if split == "train" else cfg.eval_chars
            ids[split] = {d: encode(domain_text(d, split, n)) for d in DOMAINS}
        return cls(ids)

    def sizes(self) -> dict[str, dict[str, int]]:
        return {split: {d: len(t) for d, t in by_domain.items()} for split, by_domain in self.ids.items()}


def make_domain_batches(data: DomainData, domains: list[str], block_size: int, batch_size: int,
                        device: torch.device | str = "cpu") -> GetBatch:
    """get_batch(split, generator) -> (x, y): row i is a random window of domains[i % len(domains)].
    'train' draws from the training text, 'val' from the held-out split."""
    for split in ("train", "val"):
        for d in domains:
            if len(data.ids[split][d]) <= block_size:
                raise UserError(f"{d}/{split} has {len(data.ids[split][d])} tokens, not more than block_size "
                                f"{block_size}; raise --train-chars / --eval-chars or lower --block-size")

    def get_batch(split: str, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        rows_x, rows_y = [], []
        for i in range(batch_size):
            stream = data.ids[split][domains[i % len(domains)]]
            start = int(torch.randint(len(stream) - block_size, (1,), generator=generator))
            rows_x.append(stream[start:start + block_size])
            rows_y.append(stream[start + 1:start + 1 + block_size])
        return torch.stack(rows_x).to(device), torch.stack(rows_y).to(device)

    return get_batch


def eval_windows(stream: Tensor, block_size: int, max_tokens: int) -> tuple[Tensor, Tensor]:
    """Non-overlapping windows from the start of a stream, up to max_tokens predicted tokens:
    the same windows every time, so per-domain losses of different models compare exactly."""
    n = min((len(stream) - 1) // block_size, max(1, max_tokens // block_size))
    if n < 1:
        raise UserError(f"an evaluation stream of {len(stream)} tokens is shorter than block_size {block_size}")
    x = stream[:n * block_size].view(n, block_size)
    y = stream[1:n * block_size + 1].view(n, block_size)
    return x, y
