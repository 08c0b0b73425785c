"""Long memory for month 6: text goes in as it comes, questions come back with an answer and a confidence.

    from month3_mamba.memory import LongMemory
    memory = LongMemory.from_checkpoint()           # the committed reader (any streaming checkpoint)
    memory.write("... my employee number is 4417. ...")   # as often as text arrives, any length
    r = memory.recall("what is my employee number?")
    r.answer, r.confidence                          # '4417', 0.93
    memory.recall("what is my locker number?").known   # False: the reader answered 'unknown' (never told)
    memory.state_bytes                              # the whole memory: a few KiB, whatever was written
    memory.save("memory.pt"); LongMemory.from_checkpoint().load("memory.pt")   # no re-reading after a restart

`write` streams the text through the model `chunk` bytes at a time and keeps only the model's
constant-size state. `recall` asks the question in the checkpoint's memory format (facts.py) from a
copy of the state, so asking changes nothing, and decodes greedily until the format's terminator
(or the answer's fixed length, or `max_answer` bytes). The confidence is exp of the mean log-probability
of the answer's bytes (the terminator included): near 1 when the model is sure, low when the memory
does not hold the fact - month 6 can fall back to another source below a threshold. A reader trained with
untold questions (RecallTaskConfig.untold) answers a key it was never told with the format's `unknown`:
`known` is then False, whatever the confidence (which is then how sure it is that it was not told).
"""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from month3_mamba.families import DEFAULT_CKPT, STREAMING, load_recall_model
from month3_mamba.model import state_nbytes
from month3_mamba.recall import RecallTaskConfig
from shared import checkpoint
from shared.errors import UserError

MEMORY_KIND = "month3_mamba.memory"


@dataclass
class Recall:
    """One answer from memory (plain data: month 6 logs it as is)."""

    question: str
    answer: str
    confidence: float  # exp(mean_logprob), in (0, 1]
    mean_logprob: float  # mean natural-log probability of the answer's bytes, the terminator included
    stopped: bool  # ended at the terminator or the format's fixed length (False: cut at max_answer)
    prompt: str  # what the model was asked, in its memory format
    known: bool = True  # False: the reader answered that it was never told (the format's `unknown`)


@torch.no_grad()
def decode_answer(model, state: list, prompt: str, terminator: str, max_len: int,
                  fixed_length: int | None = None) -> tuple[str, float, bool]:
    """Greedy answer to `prompt` after what `state` has read: (text without the terminator, mean
    log-probability of the bytes written, whether it stopped by itself). `state` is left as it was."""
    state = copy.deepcopy(state)
    logits = model(torch.tensor([list(prompt.encode())]), state=state)[0][:, -1]
    out, logprobs, stop = bytearray(), [], ord(terminator)
    for _ in range(fixed_length or max_len):
        logp = torch.log_softmax(logits[0].float(), -1)
        byte = int(logp.argmax())
        logprobs.append(float(logp[byte]))
        if fixed_length is None and byte == stop:
            return out.decode("utf-8", errors="replace"), sum(logprobs) / len(logprobs), True
        out.append(byte)
        logits = model.step(torch.tensor([byte]), state)
    return out.decode("utf-8", errors="replace"), sum(logprobs) / len(logprobs), fixed_length is not None


class LongMemory:
    """A streaming reader's state as a memory: `write(text)`, `recall(question)`, `save` / `load`."""

    def __init__(self, model, task: RecallTaskConfig, chunk: int = 2048, max_answer: int | None = None,
                 source: str = "") -> None:
        if not hasattr(model, "new_state"):
            raise UserError("a transformer has no constant-size state to remember with: use a checkpoint of "
                            f"{', '.join(STREAMING)}")
        if chunk < 1:
            raise UserError(f"chunk must be at least 1, got {chunk}")
        self.model = model.eval()
        self.task = task
        self.format = task.fact_format
        self.chunk = chunk
        self.max_answer = max_answer or self.format.max_answer
        self.source = source
        self.reset()

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, **kwargs) -> LongMemory:
        """A memory over an exported (or Trainer) checkpoint of train-recall; default: the committed reader."""
        model, task = load_recall_model(path or DEFAULT_CKPT)
        return cls(model, task, source=str(path or DEFAULT_CKPT), **kwargs)

    def reset(self) -> None:
        """Forget everything written."""
        self.state = self.model.new_state(1)
        self.tokens = 0

    @torch.no_grad()
    def write(self, text: str | bytes) -> None:
        """Stream `text` (UTF-8 bytes are the tokens) into the state, `chunk` bytes at a time."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        for start in range(0, len(data), self.chunk):
            block = data[start : start + self.chunk]
            self.model(torch.frombuffer(bytearray(block), dtype=torch.uint8).long()[None], state=self.state)
        self.tokens += len(data)

    def read(self, chunks: Iterable[bytes], total: int | None = None, progress: bool = False):
        """Stream byte chunks (a file's, `read.iter_chunks`) into the state with a progress bar; returns
        read.py's ReadResult (bytes, seconds, state size, peak RSS)."""
        from month3_mamba.read import read_stream  # read.py builds on this class

        result = read_stream(self.model, iter(chunks), total=total, progress=progress, state=self.state)
        self.tokens += result.n_bytes
        return result

    def recall(self, question: str) -> Recall:
        """The answer to `question` ("what is my employee number?", or for braces "qzv?") from memory."""
        prompt = self.format.prompt(question)
        answer, mean_logprob, stopped = decode_answer(self.model, self.state, prompt, self.format.terminator,
                                                      self.max_answer, self.format.fixed_length)
        known = not (stopped and answer == self.format.unknown)
        return Recall(question, answer, math.exp(mean_logprob), mean_logprob, stopped, prompt, known)

    @property
    def state_bytes(self) -> int:
        return state_nbytes(self.state)

    def _identity(self) -> dict:
        """Which model wrote a state: its config (less how it scans, which changes no number that matters)."""
        model = {k: v for k, v in self.model.config_dict().items() if k not in ("scan", "chunk_size")}
        return {"model_config": model, "task_config": asdict(self.task)}

    def _saved(self) -> dict:
        # Copies: a state tensor can be a view into the last chunk's activations, and saving a view saves its base.
        layers = [{f.name: v.clone() if isinstance(v := getattr(s, f.name), torch.Tensor) else v for f in fields(s)}
                  for s in self.state]
        return {"kind": MEMORY_KIND, "tokens": self.tokens, "state": layers, **self._identity()}

    def save(self, path: str | Path) -> Path:
        """The state (plain tensors), the token count and which model wrote it, atomically."""
        return checkpoint.atomic_save(self._saved(), path)

    def to_bytes(self) -> bytes:
        """What `save` writes, as bytes (a database row: month 6 keeps one memory per API key)."""
        buffer = io.BytesIO()
        torch.save(self._saved(), buffer)
        return buffer.getvalue()

    def load(self, path: str | Path) -> LongMemory:
        """Restore a state `save` wrote, from a memory over the same model; returns self."""
        return self._restore(checkpoint.load(path), str(path))

    def from_bytes(self, data: bytes) -> LongMemory:
        """Restore a state `to_bytes` wrote; returns self."""
        return self._restore(checkpoint.load(io.BytesIO(data)), "the saved state")

    def _restore(self, saved, where: str) -> LongMemory:
        if not isinstance(saved, dict) or saved.get("kind") != MEMORY_KIND:
            raise UserError(f"{where} is not a saved LongMemory state: pass a file written by LongMemory.save")
        if {k: saved.get(k) for k in self._identity()} != self._identity():
            raise UserError(f"{where} was written by a memory over another model or task: load it into a "
                            "LongMemory over the checkpoint that wrote it")
        state = self.model.new_state(1)
        for layer, values in zip(state, saved["state"]):
            for name, value in values.items():
                setattr(layer, name, value)
        self.state, self.tokens = state, int(saved["tokens"])
        return self
