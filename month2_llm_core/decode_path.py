"""Which greedy decode path the chat takes: speculative (the fp16 decoder checks an int4 draft's
proposals) or the fp16 decoder alone. Both give the same tokens; only the speed differs.

Whether the draft pays depends on the CPU. Measured with benchmarks/month2_decode.py (1 thread,
speed against fp32 `generate`, speculative / fp16 decoder alone): on an Intel CPU with AMX 2.16x /
1.70x; on an AMD EPYC (AVX-512 BF16, no AMX) 2.93x / 3.01x in one run and 2.85x / 2.84x in another
(month2_llm_core/RESULTS.md). So on first use the chat times both on two fixed prompts (a few
seconds), keeps the faster one whose tokens equal the fp16 decoder's, and caches that choice in the
project's cache folder (`shared.cache`), keyed by CPU model, torch threads, torch version and model.

`--decode-path speculative|fp16` (or $HYBRID_AI_DECODE_PATH when the option is `auto`) skips
the measurement.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from month2_llm_core.inference import FIXED_PROMPTS, Timing, chat_input_ids, time_round_robin
from month2_llm_core.lean_llama import FastDecoder, lean_tokens, speculative_greedy_tokens
from shared.cache import cache_dir
from shared.errors import UserError

DECODE_PATH_ENV = "HYBRID_AI_DECODE_PATH"
PATHS = ("fp16", "speculative")  # fp16 first: on a tie it wins (no draft to keep in memory)
CHOICES = ("auto", *PATHS)
# Code and prose, both answered at length (a one-line answer would time mostly the prompt's prefill).
MEASURE_PROMPTS = FIXED_PROMPTS[1:3]
MEASURE_TOKENS = 32  # per prompt: long enough for the draft's acceptance rate to show

Runner = Callable[[str], list[int]]  # prompt -> greedy token ids


def cpu_model_name() -> str:
    """The CPU's marketing name ("AMD EPYC", "Intel(R) Xeon(R) ..."), as the kernel reports it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:  # not Linux
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_key(model_name: str) -> str:
    """What the measurement depends on: the CPU, the thread count, torch's kernels and the model."""
    return f"{cpu_model_name()} | threads {torch.get_num_threads()} | torch {torch.__version__} | {model_name}"


def default_cache_file() -> Path:
    return cache_dir("decode") / "paths.json"


def fastest_correct(timings: dict[str, Timing], reference: str = "fp16") -> str:
    """The fastest path whose outputs equal the reference path's; the first listed on a tie."""
    correct = [name for name, t in timings.items() if t.outputs == timings[reference].outputs]
    return max(correct, key=lambda name: timings[name].tokens_per_s)


def decoder_runners(decoder: FastDecoder, tokenizer, eos_token_ids: set[int],
                    max_new_tokens: int | None = None) -> dict[str, Runner]:
    """The two greedy paths of one FastDecoder (which must have its draft), as prompt -> tokens;
    `max_new_tokens` per prompt defaults to MEASURE_TOKENS."""
    if decoder.draft is None:
        raise ValueError("no draft to measure: the decoder was built without speculative decoding")
    max_new_tokens = max_new_tokens or MEASURE_TOKENS

    def ids(prompt: str) -> list[int]:
        return chat_input_ids(tokenizer, prompt)[0].tolist()

    return {
        "fp16": lambda p: list(lean_tokens(decoder.target, ids(p), max_new_tokens, eos_token_ids)),
        "speculative": lambda p: list(speculative_greedy_tokens(decoder.target, decoder.draft, ids(p),
                                                                max_new_tokens, eos_token_ids,
                                                                decoder.lookahead, decoder.min_margin)),
    }


def _read(cache_file: Path) -> dict[str, Any]:
    try:
        return json.loads(cache_file.read_text())
    except (OSError, ValueError):  # none yet, or unreadable: measure again
        return {}


def _write(cache_file: Path, records: dict[str, Any]) -> None:
    tmp = cache_file.with_name(f"{cache_file.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(records, indent=1) + "\n")
        os.replace(tmp, cache_file)  # atomic: two chats starting together never see half a file
    except OSError as err:  # a read-only cache: the choice still holds for this session
        print(f"[chat] could not cache the decode path in {cache_file}: {err}", file=sys.stderr)


def resolve_decode_path(requested: str, key: str, runners: Callable[[], dict[str, Runner]],
                        cache_file: Path | None = None, prompts: Sequence[str] = MEASURE_PROMPTS,
                        timer: Callable[[], float] = time.perf_counter) -> str:
    """"speculative" or "fp16": `requested` unless "auto"; then $HYBRID_AI_DECODE_PATH unless "auto";
    then the cached choice for `key`; else a measurement of `runners()` (built only then), cached."""
    choice = requested if requested != "auto" else os.environ.get(DECODE_PATH_ENV, "auto") or "auto"
    if choice not in CHOICES:
        source = "--decode-path" if requested != "auto" else f"${DECODE_PATH_ENV}"
        raise UserError(f"{source} {choice!r}: choose one of {', '.join(CHOICES)}")
    if choice != "auto":
        return choice
    cache_file = cache_file or default_cache_file()
    records = _read(cache_file)
    if key in records and records[key].get("path") in PATHS:
        return records[key]["path"]
    print(f"[chat] timing the fp16 decoder against speculative decoding, once for this machine ({key})",
          file=sys.stderr, flush=True)
    timings = time_round_robin(runners(), prompts, timer=timer)
    path = fastest_correct(timings)
    speeds = {name: round(t.tokens_per_s, 2) for name, t in timings.items()}
    records[key] = {"path": path, "tokens_per_s": speeds,
                    "same_tokens": timings["speculative"].outputs == timings["fp16"].outputs,
                    "measured": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    _write(cache_file, records)
    print(f"[chat] {', '.join(f'{n} {v:.1f} tok/s' for n, v in speeds.items())}: {path} (cached in {cache_file}; "
          f"--decode-path or ${DECODE_PATH_ENV} to choose)", file=sys.stderr)
    return path
