"""A local chatbot with streamed answers, a system prompt, and history trimmed to the context window.

    python -m month2_llm_core chat                                   # SmolLM2, transformers, fast CPU path
    python -m month2_llm_core chat --backend llamacpp                # the GGUF through llama-cpp-python
    python -m month2_llm_core chat --backend openai --base-url http://127.0.0.1:8000/v1   # vLLM, llama.cpp server...
    echo "What is the capital of France?" | python -m month2_llm_core chat                 # no TTY needed

Commands inside the chat: /reset, /save PATH, /help, /quit.

Backends share one small protocol (`count_tokens`, `stream`), so the session logic (history,
trimming, commands) is the same for all three and testable with a fake backend.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TextIO

from month2_llm_core.tokenization import SMOLLM2_DEFAULT_SYSTEM, apply_chatml
from shared.config import add_config_arguments, config_from_args
from shared.errors import UserError

Message = dict[str, str]

HELP = """commands:
  /reset       forget the conversation (the system prompt stays)
  /save PATH   write the conversation to PATH as JSON
  /help        this help
  /quit        leave (end of input works too)"""


@dataclass
class Sampling:
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0 = greedy: reproducible answers
    top_p: float = 0.9
    # JSON that validates against this schema ({"type": "object"}: any object), by constrained decoding
    json_schema: dict | None = None


class Backend(Protocol):
    name: str

    def count_tokens(self, messages: list[Message]) -> int: ...

    def stream(self, messages: list[Message], sampling: Sampling) -> Iterator[str]: ...


# -- history ---------------------------------------------------------------------------------------
def trim_history(messages: list[Message], count_tokens: Callable[[list[Message]], int],
                 budget: int) -> tuple[list[Message], int]:
    """Drop the oldest turns until the prompt fits in `budget` tokens; (kept, dropped count).

    The system message and the last message always stay. A turn is dropped whole: the oldest
    message, and the assistant reply after it, so the history never starts mid-exchange.
    """
    system = [m for m in messages[:1] if m["role"] == "system"]
    rest = messages[len(system):]
    dropped = 0
    while count_tokens(system + rest) > budget:
        if len(rest) <= 1:
            raise ValueError(f"the message alone needs {count_tokens(system + rest)} tokens, more than the "
                             f"{budget} the context window leaves for the prompt; shorten it or raise "
                             "--context-window")
        n = 2 if len(rest) > 2 and rest[1]["role"] == "assistant" else 1
        rest, dropped = rest[n:], dropped + n
    return system + rest, dropped


class ChatSession:
    """The conversation: a system prompt, the history, and one backend to answer."""

    def __init__(self, backend: Backend, system: str = SMOLLM2_DEFAULT_SYSTEM, context_window: int = 2048,
                 sampling: Sampling | None = None) -> None:
        self.backend = backend
        self.system = system
        self.context_window = context_window
        self.sampling = sampling or Sampling()
        if self.sampling.max_new_tokens >= context_window:
            raise ValueError("max_new_tokens must be smaller than the context window")
        self.messages: list[Message] = []
        self.last_dropped = 0
        self.reset()

    def reset(self) -> None:
        self.messages = [{"role": "system", "content": self.system}] if self.system else []

    def reply(self, text: str) -> Iterator[str]:
        """Stream the answer to `text`; history is trimmed first and updated when the answer ends."""
        candidate = [*self.messages, {"role": "user", "content": text}]
        budget = self.context_window - self.sampling.max_new_tokens
        self.messages, self.last_dropped = trim_history(candidate, self.backend.count_tokens, budget)
        pieces = []
        for piece in self.backend.stream(self.messages, self.sampling):
            pieces.append(piece)
            yield piece
        self.messages.append({"role": "assistant", "content": "".join(pieces).strip()})

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"backend": self.backend.name, "messages": self.messages}, indent=1) + "\n")
        return path


def run_chat(session: ChatSession, stdin: TextIO, stdout: TextIO, show_prompt: bool = False) -> None:
    """Read lines from `stdin` (a terminal or any stream), answer on `stdout`, until /quit or EOF."""

    def say(text: str = "", end: str = "\n") -> None:
        stdout.write(text + end)
        stdout.flush()

    say(f"[{session.backend.name}] /help for commands")
    while True:
        if show_prompt:
            say("you> ", end="")
        line = stdin.readline()
        if not line:
            break
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            command, _, arg = line.partition(" ")
            if command == "/quit":
                break
            elif command == "/reset":
                session.reset()
                say("[conversation reset]")
            elif command == "/save":
                if not arg.strip():
                    say("usage: /save PATH")
                else:
                    say(f"[saved {session.save(arg.strip())}]")
            elif command == "/help":
                say(HELP)
            else:
                say(f"unknown command {command}; /help lists them")
            continue
        try:
            stream = session.reply(line)
            say("bot> ", end="")
            for piece in stream:
                say(piece, end="")
            say()
        except (ValueError, RuntimeError, OSError) as err:  # a too-long message, a server error
            say(f"\n[error] {err}")
            continue
        if session.last_dropped:
            say(f"[history trimmed: {session.last_dropped} old messages dropped to fit the context window]")


# -- backends --------------------------------------------------------------------------------------
class TransformersBackend:
    """A Hugging Face model in this process. With `fast`, decoding runs on the fast CPU path
    (lean_llama.FastDecoder: our own decoder; greedy decoding speculative or not, by `decode_path`,
    see `decode_path.resolve_decode_path`); otherwise through the model itself (inference.stream_tokens).
    `name` says which path actually runs."""

    def __init__(self, model, tokenizer, model_name: str = "model", seed: int = 0, fast: bool = False,
                 decode_path: str = "auto", temperature: float = 0.0) -> None:
        import torch

        from month2_llm_core.inference import eos_ids

        self.model, self.tokenizer = model, tokenizer
        self.eos = eos_ids(model, tokenizer)
        self.decoder = self._fast_decoder(model_name, decode_path, temperature) if fast else None
        path = self.decoder.describe(temperature) if self.decoder is not None else "transformers forward"
        self.name = f"transformers:{model_name}, {path}"
        self.generator = torch.Generator().manual_seed(seed)

    def _fast_decoder(self, model_name: str, decode_path: str, temperature: float):
        from month2_llm_core.decode_path import decoder_runners, machine_key, resolve_decode_path
        from month2_llm_core.lean_llama import FastDecoder

        try:
            # Sampling never uses the draft, so it is built only for greedy decoding.
            decoder = FastDecoder(self.model, speculative=temperature == 0 and decode_path != "fp16")
        except ValueError as err:  # not a LLaMA-family model: transformers decodes it, slower
            warnings.warn(f"fast path off: {err}", stacklevel=3)
            return None
        if decoder.draft is not None and resolve_decode_path(
                decode_path, machine_key(model_name),
                lambda: decoder_runners(decoder, self.tokenizer, self.eos)) == "fp16":
            decoder.draft = None  # measured slower here: free its memory
        return decoder

    @classmethod
    def load(cls, model_name: str = "smollm2", fast: bool = True, seed: int = 0, decode_path: str = "auto",
             temperature: float = 0.0) -> TransformersBackend:
        from shared.models import load_chat_model

        model, tokenizer = load_chat_model(model_name, progress=False)
        return cls(model, tokenizer, model_name, seed, fast, decode_path, temperature)

    def _ids(self, messages: list[Message]):
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True,
                                                  return_tensors="pt")["input_ids"]

    def count_tokens(self, messages: list[Message]) -> int:
        return self._ids(messages).size(1)

    def stream(self, messages: list[Message], sampling: Sampling) -> Iterator[str]:
        from month2_llm_core.inference import stream_text, stream_tokens

        ids = self._ids(messages)
        constraint = None
        if sampling.json_schema is not None:
            from month2_llm_core.structured import JsonConstraint

            constraint = JsonConstraint(self.tokenizer, sampling.json_schema)
        if self.decoder is not None and constraint is None:  # the fast path has no logits hook
            tokens = self.decoder.tokens(ids[0].tolist(), sampling.max_new_tokens, self.eos, sampling.temperature,
                                         top_p=sampling.top_p, generator=self.generator)
        else:
            tokens = stream_tokens(self.model, ids, sampling.max_new_tokens, self.eos, sampling.temperature,
                                   top_p=sampling.top_p, generator=self.generator, constraint=constraint)
        yield from stream_text(self.tokenizer, tokens)


class LlamaCppBackend:
    """A GGUF file through llama-cpp-python (optional: `pip install -e '.[llamacpp]'`, a source
    build of 18-30 min on 2 cores). Defaults to SmolLM2's GGUF from the offline store."""

    def __init__(self, gguf: str = "", context_window: int = 2048, threads: int | None = None,
                 batch: int = 512) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as err:
            raise RuntimeError("the llamacpp backend needs llama-cpp-python: pip install -e '.[llamacpp]' "
                               "(builds from source, 18-30 min on 2 cores)") from err
        from shared.models import smollm2_gguf_path

        path = gguf or str(smollm2_gguf_path())
        self.name = f"llama.cpp:{Path(path).name}"
        self.llm = Llama(model_path=path, n_ctx=context_window, n_threads=threads, n_batch=batch, verbose=False)

    def count_tokens(self, messages: list[Message]) -> int:
        # SmolLM2's template is ChatML; for other GGUFs this is a close estimate.
        return len(self.llm.tokenize(apply_chatml(messages, add_generation_prompt=True).encode(),
                                     add_bos=False, special=True))

    def stream(self, messages: list[Message], sampling: Sampling) -> Iterator[str]:
        fmt = {"type": "json_object", "schema": sampling.json_schema} if sampling.json_schema is not None else None
        chunks = self.llm.create_chat_completion(messages=messages, stream=True, max_tokens=sampling.max_new_tokens,
                                                 temperature=sampling.temperature, top_p=sampling.top_p,
                                                 response_format=fmt)
        for chunk in chunks:
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                yield piece


def estimate_tokens(messages: list[Message]) -> int:
    """A conservative count when the server's tokenizer is not at hand: ~3 characters per token
    (English prose averages ~4 with SmolLM2's tokenizer) plus ChatML's 5 tokens per message."""
    return sum(len(m["content"]) // 3 + 5 for m in messages) + 3


class OpenAIBackend:
    """Any OpenAI-compatible server (vLLM, llama.cpp's server, the month-6 server): POST
    /chat/completions with stream=true, read the server-sent events."""

    def __init__(self, base_url: str, model: str = "", api_key: str = "", timeout: float = 120.0,
                 count_tokens: Callable[[list[Message]], int] = estimate_tokens) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key or os.environ.get('OPENAI_API_KEY', 'none')}"}
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)
        self.model = model or self.first_model()
        self.name = f"openai:{self.model}@{self.base_url}"
        self.count_tokens = count_tokens

    def models(self) -> list[str]:
        """The ids the server lists (vLLM: the base model, then each `--lora-modules` name)."""
        import httpx

        try:
            response = self.client.get("/models")
            response.raise_for_status()
        except httpx.HTTPError as err:
            raise RuntimeError(f"{self.base_url}/models: {err}") from err
        return [model["id"] for model in response.json().get("data", [])]

    def first_model(self) -> str:
        """The first model the server lists (vLLM serves one)."""
        models = self.models()
        if not models:
            raise RuntimeError(f"{self.base_url}/models lists no model; pass --model")
        return models[0]

    def stream(self, messages: list[Message], sampling: Sampling) -> Iterator[str]:
        body = {"model": self.model, "messages": messages, "stream": True, "max_tokens": sampling.max_new_tokens,
                "temperature": sampling.temperature, "top_p": sampling.top_p}
        if sampling.json_schema is not None:  # the server constrains its own decoding
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": sampling.json_schema}}
        with self.client.stream("POST", "/chat/completions", json=body) as response:
            if response.status_code != 200:
                response.read()
                raise RuntimeError(f"server answered {response.status_code}: {response.text[:300]}")
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue  # blank separators, comments, keep-alives
                data = line[len("data:"):].strip()
                if data == "[DONE]":
                    return
                choices = json.loads(data).get("choices") or [{}]
                piece = (choices[0].get("delta") or {}).get("content")
                if piece:
                    yield piece


# -- CLI -------------------------------------------------------------------------------------------
@dataclass
class ChatConfig:
    backend: str = field(default="transformers", metadata={"help": "who answers",
                                                           "choices": ["transformers", "llamacpp", "openai"]})
    model: str = field(default="", metadata={"help": "transformers: smollm2 (default), a folder or a hub id; "
                                                     "llamacpp: a GGUF path (default SmolLM2's); openai: the "
                                                     "served model name (default: the first the server lists)"})
    base_url: str = field(default="http://127.0.0.1:8000/v1", metadata={"help": "openai backend: server URL"})
    api_key: str = field(default="", metadata={"help": "openai backend: key (default $OPENAI_API_KEY)"})
    system: str = field(default=SMOLLM2_DEFAULT_SYSTEM, metadata={"help": "system prompt"})
    context_window: int = field(default=2048, metadata={"help": "tokens for prompt + answer; older turns are "
                                                                "dropped to fit"})
    max_new_tokens: int = field(default=256, metadata={"help": "longest answer, in tokens"})
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy (reproducible); try 0.7"})
    top_p: float = field(default=0.9, metadata={"help": "nucleus sampling when temperature > 0"})
    fast: bool = field(default=True, metadata={"help": "transformers: our lean decoder with fp16 weights (same "
                                                       "greedy answers as fp32, ~2-3x), for LLaMA-family models"})
    decode_path: str = field(default="auto", metadata={
        "help": "transformers, greedy, fast: speculative (fp16 decoder + int4 draft) or fp16 (the decoder alone); "
                "auto: whichever a first-use measurement found faster on this machine (cached), or "
                "$HYBRID_AI_DECODE_PATH", "choices": ["auto", "speculative", "fp16"]})
    threads: int = field(default=0, metadata={"help": "torch / llama.cpp threads (0 = automatic)"})
    llamacpp_batch: int = field(default=512, metadata={"help": "llamacpp: tokens per batch; 1 avoids a crash in "
                                                                "ggml's AMX kernels on some CPUs (RESULTS.md)"})
    seed: int = field(default=0, metadata={"help": "sampling seed"})

    def __post_init__(self) -> None:
        if not 0 < self.max_new_tokens < self.context_window:
            raise ValueError(f"--max-new-tokens {self.max_new_tokens} must be at least 1 and smaller than "
                             f"--context-window {self.context_window}")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"--temperature must be >= 0 (got {self.temperature}) and --top-p in (0, 1] "
                             f"(got {self.top_p})")
        if self.threads < 0 or self.llamacpp_batch < 1:
            raise ValueError("--threads must be >= 0 and --llamacpp-batch >= 1")


def make_backend(cfg: ChatConfig) -> Backend:
    if cfg.backend == "openai":
        return OpenAIBackend(cfg.base_url, cfg.model, cfg.api_key)
    if cfg.backend == "llamacpp":
        return LlamaCppBackend(cfg.model, cfg.context_window, cfg.threads or None, cfg.llamacpp_batch)
    return TransformersBackend.load(cfg.model or "smollm2", cfg.fast, cfg.seed, cfg.decode_path, cfg.temperature)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, ChatConfig)


def main(args: argparse.Namespace) -> None:
    from shared.runtime import set_threads

    cfg = config_from_args(ChatConfig, args)
    set_threads(cfg.threads or None)
    try:
        backend = make_backend(cfg)
    except (RuntimeError, OSError, ValueError) as err:  # an unknown model, a missing extra, no server
        raise UserError(f"cannot start the {cfg.backend} backend: {err}") from err
    session = ChatSession(backend, cfg.system, cfg.context_window,
                          Sampling(cfg.max_new_tokens, cfg.temperature, cfg.top_p))
    run_chat(session, sys.stdin, sys.stdout, show_prompt=sys.stdin.isatty())
