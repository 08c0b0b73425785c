"""Dynamic batching of generation across concurrent requests, on month 4's mixture of adapters.

    batcher = GenerationBatcher(mixture, max_batch=16, wait_s=0.2)
    with batcher.turn():        # around the whole request: batches wait for requests in flight
        for piece in batcher.stream("math", messages, Sampling(max_new_tokens=64)):   # like a chat Backend
            ...

A request thread puts its prompt in a queue and reads its tokens back from its own queue. One worker thread
takes the first waiting request and, while other requests are in flight (`turn()`), gathers those that arrive
within `wait_s` (up to `max_batch`; a request alone starts at once), and decodes
them together: the prompts left-padded into one batch, one forward per step for all rows, each row with its own
expert's LoRA adapter (peft's `adapter_names`; GENERAL rows run the base alone). Each row stops at its own
end-of-turn or `max_new_tokens`; the batch ends when all rows have. Requests that arrive meanwhile wait for
the next batch (batching by waves, not continuous batching: a long answer holds up the next wave). Greedy and
sampled requests go in separate batches (one temperature and top_p per batch). On 2 CPU cores one step for
16 rows costs a few times one step for one row, which is where the throughput comes from
(benchmarks/month6_load.py).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from month2_llm_core.chat import Sampling
from month2_llm_core.inference import eos_ids, stream_text, stream_tokens
from month4_moe.experts import GENERAL

BASE = "__base__"  # peft's name for "no adapter" in adapter_names
_END = object()


@dataclass(eq=False)
class _Request:
    expert: str
    ids: list[int]
    sampling: Sampling
    out: queue.Queue = field(default_factory=queue.Queue)
    made: int = 0
    done: bool = False  # ended (its end-of-turn, its max_new_tokens) or abandoned by its client


class _Rows(BaseStreamer, StoppingCriteria):
    """generate's streamer (each step's new token of every row, to that row's queue) and its per-row stop."""

    def __init__(self, rows: list[_Request], eos: set[int]) -> None:
        self.rows, self.eos, self.prompt_seen = rows, eos, False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # generate first puts the prompt
            self.prompt_seen = True
            return
        for row, token in zip(self.rows, value.view(-1).tolist()):
            if row.done:
                continue
            row.made += 1
            row.out.put(token)
            row.done = token in self.eos or row.made >= row.sampling.max_new_tokens

    def end(self) -> None:
        pass

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return torch.tensor([row.done for row in self.rows], dtype=torch.bool)


class GenerationBatcher:
    def __init__(self, mixture, max_batch: int = 16, wait_s: float = 0.2) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.mixture, self.max_batch, self.wait_s = mixture, max_batch, wait_s
        self.tokenizer = mixture.tokenizer
        self.eos = eos_ids(mixture.model, self.tokenizer)
        self.pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(self.eos)
        self.batch_sizes: Counter[int] = Counter()  # how many batches of each size ran
        self._queue: queue.Queue[_Request] = queue.Queue()
        self._turns, self._count_lock = 0, threading.Lock()
        self._generator = torch.Generator().manual_seed(0)  # sampled answers of a batch of one
        threading.Thread(target=self._work, name="generation-batcher", daemon=True).start()

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Mark a request in flight for the whole of its turn: a batch waits (up to `wait_s`) only while
        such requests may still join it, so a lone request never waits."""
        with self._count_lock:
            self._turns += 1
        try:
            yield
        finally:
            with self._count_lock:
                self._turns -= 1

    def _ids(self, messages: list[dict[str, str]]) -> list[int]:
        return list(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
                    ["input_ids"])

    def stream(self, expert: str, messages: list[dict[str, str]], sampling: Sampling) -> Iterator[str]:
        """The answer's text pieces as its batch decodes them (a chat Backend's `stream`, for one expert)."""
        yield from self.stream_ids(expert, self._ids(messages), sampling)

    def stream_ids(self, expert: str, ids: list[int], sampling: Sampling) -> Iterator[str]:
        """The same for a prompt already rendered and tokenized (the tool-call model's own prompt format)."""
        if sampling.json_schema is not None:
            raise ValueError("constrained decoding is not batched: use the expert's own backend")
        request = _Request(expert, list(ids), sampling)
        self._queue.put(request)
        try:
            yield from stream_text(self.tokenizer, self._tokens(request))
        finally:
            request.done = True  # a client that went away stops its row at the next step

    @staticmethod
    def _tokens(request: _Request) -> Iterator[int]:
        while (item := request.out.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item

    @torch.inference_mode()
    def _decode_alone(self, row: _Request) -> None:
        """A batch of one: month 2's lean decode loop (cheaper per step than generate's), same tokens."""
        self.batch_sizes[1] += 1
        try:
            with self.mixture.use(row.expert):
                tokens = stream_tokens(self.mixture.model, torch.tensor([row.ids]), row.sampling.max_new_tokens,
                                       self.eos, row.sampling.temperature, top_p=row.sampling.top_p,
                                       generator=self._generator)
                for token in tokens:
                    if row.done:
                        break
                    row.out.put(token)
        except Exception as err:
            row.out.put(err)
        finally:
            row.out.put(_END)

    # -- the worker ---------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            batch = [self._queue.get()]
            deadline = time.monotonic() + self.wait_s
            # Wait only for turns in flight that could still join (none when one client is alone).
            while len(batch) < min(self.max_batch, self._turns) and time.monotonic() < deadline:
                try:
                    batch.append(self._queue.get(timeout=0.005))
                except queue.Empty:
                    pass
            groups: dict[tuple[float, float], list[_Request]] = {}
            for request in batch:
                if not request.done:
                    sampling = request.sampling
                    mode = (sampling.temperature, sampling.top_p if sampling.temperature > 0 else 1.0)
                    groups.setdefault(mode, []).append(request)
            for (temperature, top_p), rows in groups.items():
                self._decode(rows, temperature, top_p)

    @torch.inference_mode()
    def _decode(self, rows: list[_Request], temperature: float, top_p: float) -> None:
        if len(rows) == 1:
            self._decode_alone(rows[0])
            return
        width = max(len(r.ids) for r in rows)
        ids = torch.tensor([[self.pad] * (width - len(r.ids)) + r.ids for r in rows])
        mask = torch.tensor([[0] * (width - len(r.ids)) + [1] * len(r.ids) for r in rows])
        names = [BASE if r.expert == GENERAL else r.expert for r in rows]
        sampled = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else \
            {"do_sample": False}
        rows_io = _Rows(rows, self.eos)
        try:
            with self.mixture.exclusive():
                self.batch_sizes[len(rows)] += 1
                self.mixture.model.generate(
                    input_ids=ids, attention_mask=mask, adapter_names=names, streamer=rows_io,
                    stopping_criteria=StoppingCriteriaList([rows_io]), pad_token_id=self.pad,
                    eos_token_id=sorted(self.eos), max_new_tokens=max(r.sampling.max_new_tokens for r in rows),
                    top_k=None, **sampled)
        except Exception as err:  # every waiting client hears of it; the worker goes on
            for row in rows:
                row.out.put(err)
        finally:
            for row in rows:
                row.out.put(_END)
