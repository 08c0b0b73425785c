"""Read a text file of any length through a trained model in constant memory, then answer questions.
Any streaming family's checkpoint works (Mamba, hybrid, RWKV, delta: exported checkpoints record which).

    python -m month3_mamba read FILE --ask "qzv?" --ask "abc?"
    python -m month3_mamba read FILE --ckpt month3_mamba/checkpoints/memory.pt --ask "what is my door code?"

The file is read `--chunk` bytes at a time; each chunk goes through the model with the
streaming state carried on, then is dropped: memory is the model, one chunk and the state
(a few KB), whether the file is 1 KB or 1 GB. Questions go to a `LongMemory` (memory.py) over
that state, in the checkpoint's memory format (facts.py): a braces reader is asked `{key? ` and
writes the value's digits; a sentences reader is asked `Q: what is KEY?` / `A: KEY is ` and writes until its
terminator, or `unknown` for a key the file never stated (the shipped memory reader was trained to say so).
Each answer comes with its confidence (exp of the mean log-probability of its bytes).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from month3_mamba.checks import require_at_least
from month3_mamba.families import DEFAULT_CKPT, STREAMING, load_recall_model
from month3_mamba.memory import LongMemory
from month3_mamba.model import state_nbytes
from shared.config import add_config_arguments, config_from_args
from shared.errors import UserError
from shared.memory import MIB, peak_rss_bytes
from shared.runtime import set_threads


@dataclass
class ReadConfig:
    ckpt: str = field(default=str(DEFAULT_CKPT), metadata={"help": "checkpoint of a streaming family (mamba, "
                                                                   "hybrid, rwkv, delta); the default: the committed "
                                                                   "reader"})
    chunk: int = field(default=2048, metadata={"help": "bytes per streamed chunk"})
    threads: int = field(default=1, metadata={"help": "torch threads"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})

    def __post_init__(self) -> None:
        require_at_least(self, 1, "chunk", "threads")


@dataclass
class ReadResult:
    n_bytes: int
    seconds: float
    state_bytes: int
    peak_rss_mb: float
    state: list

    @property
    def tokens_per_s(self) -> float:
        return self.n_bytes / max(self.seconds, 1e-9)


def iter_chunks(path: str | Path, chunk: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while block := f.read(chunk):
            yield block


@torch.no_grad()
def read_stream(
    model, chunks: Iterator[bytes], total: int | None = None, progress: bool = True, max_bytes: int | None = None,
    state: list | None = None,
) -> ReadResult:
    """Run byte chunks through `model` (bytes are token ids), carrying the state (a new one, or `state`,
    updated in place); returns it. `max_bytes`: stop after that many bytes."""
    state = model.new_state(1) if state is None else state
    n, start = 0, time.perf_counter()
    bar = tqdm(total=total, unit="tok", unit_scale=True, desc="read", disable=not progress, dynamic_ncols=True)
    for block in chunks:
        if max_bytes is not None and n >= max_bytes:
            break
        model(torch.frombuffer(bytearray(block), dtype=torch.uint8).long()[None], state=state)
        n += len(block)
        bar.update(len(block))
    bar.close()
    return ReadResult(n, time.perf_counter() - start, state_nbytes(state), peak_rss_bytes() / MIB, state)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # The file and the questions are inputs, not settings: they stay out of ReadConfig.
    parser.add_argument("file", help="a text file (read as bytes)")
    parser.add_argument("--ask", action="append", default=[], metavar="QUESTION",
                        help='a question such as "qzv?" (braces) or "what is my door code?" (sentences); repeatable')
    add_config_arguments(parser, ReadConfig)


def main(args: argparse.Namespace) -> None:
    cfg = config_from_args(ReadConfig, args)
    path = Path(args.file)
    if not path.is_file():  # before the model loads; open() reports a file it may not read
        raise UserError(f"{path}: {'not a file' if path.exists() else 'no such file'}; read takes a text file")
    set_threads(cfg.threads)
    model, task = load_recall_model(cfg.ckpt)
    if not hasattr(model, "new_state"):  # the one family that is not streaming
        raise UserError(f"{cfg.ckpt} is a transformer: it has no constant-size state to stream a file through; "
                        f"read takes a checkpoint of {', '.join(STREAMING)} (eval-recall scores a transformer)")
    memory = LongMemory(model, task, chunk=cfg.chunk, source=cfg.ckpt)
    result = memory.read(iter_chunks(path, cfg.chunk), total=path.stat().st_size, progress=cfg.progress)
    print(f"read {result.n_bytes:,} tokens (bytes) in {result.seconds:.1f} s ({result.tokens_per_s:,.0f} tokens/s); "
          f"state {result.state_bytes / 1024:.0f} KiB; peak RSS {result.peak_rss_mb:.0f} MB")
    for question in args.ask:
        r = memory.recall(question)
        print(f"{memory.format.key_of(question)}? {r.answer}   (confidence {r.confidence:.2f})")
