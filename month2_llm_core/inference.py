"""Decoding with a Hugging Face causal LM: the KV cache, batching, streaming, and a fast CPU path.

- `stream_tokens`: the decode loop itself. One forward pass over the prompt fills the KV cache
  (prefill), then each step feeds only the newest token. Greedy or sampled (month 1's
  `sample_next_token`). `greedy_decode` (graded exercise 2.3) uses it, and the chatbot with `--fast false`.
- `generate_batch`: several prompts in one `generate` call, padded on the left so that every
  row's last position is a real token.
- `stream_text`: text pieces as tokens arrive, without cutting multi-byte characters.
- `optimize_for_cpu`: faster decoding inside transformers' own modules (the first step towards the
  chat's decoder, `lean_llama.FastDecoder`). Two changes, both keeping fp32 arithmetic:
  1. every Linear inside the decoder layers stores its weights in fp16 and runs FBGEMM's
     fp16 GEMM, which converts them back to fp32 on the fly (`quantize_dynamic(dtype=float16)`).
     Decoding one token is bound by reading weights from memory, so half the bytes is most
     of the gain. SmolLM2's weights are bf16 values, which fp16 holds exactly unless they
     are tinier than 6e-5 (then off by < 3e-8).
  2. the LM head (28M of the 135M parameters, tied to the embedding) scores the vocabulary
     with an int8 copy of its weights in a few milliseconds, then recomputes in fp32 every
     token whose score could be the maximum, using a bound on the int8 error. The top token
     is therefore exactly fp32's top token; the far tail keeps int8 scores (only sampling
     from deep in the tail could notice).
  Measured against plain fp32 `generate` in benchmarks/month2_decode.py.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor, nn

from month1_transformer.sampling import sample_next_token

# A fixed prompt set: the decode and quantization benchmarks compare answers on these.
FIXED_PROMPTS = (
    "What is the capital of France?",
    "Write a Python function that adds two numbers.",
    "Give me three tips for sleeping better.",
    "What is 12 times 7?",
    "Translate 'good morning' into Spanish.",
    "Name the largest planet in the solar system.",
)


def chat_input_ids(tokenizer, prompt: str, system: str | None = None) -> Tensor:
    """(1, T) ids of a one-turn conversation with the generation prompt appended."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True, return_tensors="pt")
    return ids["input_ids"]


def eos_ids(model, tokenizer=None) -> set[int]:
    """Every id that ends a turn: the generation config's eos id(s) and the tokenizer's."""
    ids = model.generation_config.eos_token_id
    found = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tokenizer is not None and tokenizer.eos_token_id is not None:
        found.add(tokenizer.eos_token_id)
    return found


# -- the decode loop --------------------------------------------------------------------------------
class Constraint(Protocol):
    """What a step may emit (structured.JsonConstraint: JSON that validates against a schema)."""

    def mask_(self, logits: Tensor) -> None: ...  # forbidden tokens' logits to -inf, in place

    def consume(self, token_id: int) -> None: ...


@torch.inference_mode()
def stream_tokens(
    model,
    input_ids: Tensor,
    max_new_tokens: int,
    eos_token_ids: Sequence[int] | set[int] = (),
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    constraint: Constraint | None = None,
) -> Iterator[int]:
    """Yield new token ids one at a time (batch of one); stops after an eos id or max_new_tokens.
    `constraint` masks each step's logits before sampling (grammar-constrained decoding).

    Calls the model directly with a DynamicCache: no logits processors, stopping criteria or
    per-step bookkeeping of `generate`, which matters when one step takes a few milliseconds.
    """
    from transformers import DynamicCache

    if input_ids.size(0) != 1:
        raise ValueError("stream_tokens decodes one sequence; use generate_batch for several")
    cache = DynamicCache(config=model.config)
    logits = model(input_ids=input_ids, cache=cache, use_cache=True, logits_to_keep=1).logits
    for _ in range(max_new_tokens):
        step = logits[:, -1].float()
        if constraint is not None:
            constraint.mask_(step)
        token = sample_next_token(step, temperature, top_k, top_p, generator)
        token_id = int(token)
        if constraint is not None:
            constraint.consume(token_id)
        yield token_id
        if token_id in eos_token_ids:
            return
        logits = model(input_ids=token, cache=cache, use_cache=True).logits


def greedy_decode(model, input_ids: Tensor, max_new_tokens: int, eos_token_id: int | None = None) -> Tensor:
    """Prompt + greedily decoded tokens, (1, T + n): what generate(do_sample=False) returns."""
    eos = () if eos_token_id is None else (eos_token_id,)
    new = list(stream_tokens(model, input_ids, max_new_tokens, eos))
    return torch.cat([input_ids, torch.tensor([new], dtype=input_ids.dtype)], dim=1)


def stream_text(tokenizer, token_ids: Iterator[int], skip_special_tokens: bool = True) -> Iterator[str]:
    """Text pieces as tokens arrive. A piece is held back while it ends in an incomplete
    UTF-8 character (decoded as U+FFFD), so emojis and accents are never split."""
    ids: list[int] = []
    shown = ""
    for token_id in token_ids:
        ids.append(token_id)
        text = tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)
        if text.endswith("\ufffd"):
            continue
        yield text[len(shown):]
        shown = text


# -- transformers' own paths, for comparison ----------------------------------------------------
@torch.inference_mode()
def generate_batch(model, tokenizer, prompts: Sequence[str], max_new_tokens: int) -> list[str]:
    """Greedy answers for several prompts in one generate call, left-padded."""
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                           tokenize=False) for p in prompts]
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # right padding would put pad tokens between a prompt and its answer
    try:
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side
    out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id)
    return tokenizer.batch_decode(out[:, batch["input_ids"].size(1):], skip_special_tokens=True)


def stream_with_streamer(model, tokenizer, input_ids: Tensor, max_new_tokens: int) -> Iterator[str]:
    """transformers' TextIteratorStreamer: generate runs in a thread, text arrives through a queue."""
    from transformers import TextIteratorStreamer

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    kwargs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
              "max_new_tokens": max_new_tokens, "do_sample": False, "streamer": streamer}
    thread = threading.Thread(target=torch.inference_mode()(model.generate), kwargs=kwargs, daemon=True)
    thread.start()
    yield from streamer
    thread.join()


# -- measuring ------------------------------------------------------------------------------------
@dataclass
class Timing:
    tokens: int = 0
    seconds: float = 0.0
    outputs: list = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def time_round_robin(runners: dict[str, Callable[[str], list[int]]], prompts: Sequence[str],
                     warmup: str = "Hi", timer: Callable[[], float] = time.perf_counter) -> dict[str, Timing]:
    """Time each runner (prompt -> new token ids) on every prompt, taking turns prompt by prompt, so
    that a machine whose load changes during the run slows every runner alike. Ratios between
    runners are what to read; absolute tokens/s depend on what else the machine is doing.
    `timer` is replaceable so that tests can drive the clock."""
    for run in runners.values():
        run(warmup)
    timings = {name: Timing() for name in runners}
    for prompt in prompts:
        for name, run in runners.items():
            start = timer()
            out = run(prompt)
            timings[name].seconds += timer() - start
            timings[name].tokens += len(out)
            timings[name].outputs.append(out)
    return timings


# -- the fast CPU path -----------------------------------------------------------------------------
def fp16_weight_linears(module: nn.Module) -> nn.Module:
    """Replace every nn.Linear in `module` by FBGEMM's fp16-weight linear (fp32 activations and
    accumulation). Returns the module (changed in place)."""
    if "fbgemm" not in torch.backends.quantized.supported_engines:
        raise RuntimeError("fp16-weight linears need FBGEMM (x86 CPUs); this build lacks it")
    from torch.ao.quantization import float16_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # torch.ao's eager quantization is deprecated in favour of torchao, whose CPU kernels
        # were slower than fp32 here (month2_llm_core/RESULTS.md); this one has no replacement yet.
        warnings.filterwarnings("ignore", message="torch.ao.quantization is deprecated")
        return quantize_dynamic(module, {nn.Linear: float16_dynamic_qconfig}, dtype=torch.float16, inplace=True)


class VerifiedInt8Head(nn.Module):
    """An LM head that is fast and still exact where greedy decoding looks.

    Scores every token with int8 weights (per-row scales, bf16 activations, torch's
    `_weight_int8pack_mm` kernel) and bounds each score's error by Cauchy-Schwarz:
    |approx - exact| <= |x - bf16(x)| |w8| + |x| |w8 - w| + rounding of the bf16 output.
    The `top` best approximate scores are recomputed in fp32; then every other token whose
    upper bound still reaches the best exact score is recomputed too. No token left out can
    beat the best, so the argmax is fp32's argmax.
    """

    def __init__(self, linear: nn.Linear, top: int = 8) -> None:
        super().__init__()
        if linear.bias is not None:
            raise ValueError("VerifiedInt8Head expects an LM head without bias")
        self.weight = linear.weight  # shared (tied to the embedding): no copy
        self.top = top
        w = linear.weight.detach().float()
        scale = (w.abs().amax(dim=1) / 127).clamp(min=1e-12).to(torch.bfloat16)
        q = torch.round(w / scale.float()[:, None]).clamp(-127, 127)
        dequant = q * scale.float()[:, None]
        self.register_buffer("q", q.to(torch.int8), persistent=False)
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("q_norm", dequant.norm(dim=1), persistent=False)
        self.register_buffer("q_error", (dequant - w).norm(dim=1), persistent=False)
        self.recomputed = 0  # tokens recomputed in fp32 by the last call (to see how tight the bound is)
        self._check_kernel(dequant)

    def _check_kernel(self, dequant: Tensor) -> None:
        """The guarantee rests on the kernel computing what the bound assumes. In torch 2.13 it
        reads out of bounds when in_features is not a multiple of 16 (wrong numbers, or a crash):
        refuse those shapes, then check the kernel on random inputs."""
        if dequant.size(1) % 16:
            raise ValueError(f"the int8 kernel is unreliable for {dequant.size(1)} input features "
                             "(needs a multiple of 16)")
        x = torch.randn(4, dequant.size(1), generator=torch.Generator().manual_seed(0))
        scores, bound = self._approximate(x)
        error = (scores - x @ dequant.T).abs()
        if not torch.isfinite(scores).all() or (error > bound).any():
            raise ValueError(f"the int8 kernel is unreliable for a {tuple(dequant.shape)} head on this machine")

    def _approximate(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """int8 scores and a bound on |score - exact fp32 score|, for each row of x (fp32, 2-D)."""
        xb = x.to(torch.bfloat16)
        scores = torch.ops.aten._weight_int8pack_mm(xb, self.q, self.scale).float()
        x_err = (x - xb.float()).norm(dim=1, keepdim=True)
        x_norm = x.norm(dim=1, keepdim=True)
        accumulate = x.size(1) * 2.0**-23 * x_norm * self.q_norm  # fp32 sums inside the kernel
        bound = 1.01 * (x_err * self.q_norm + x_norm * self.q_error + accumulate + scores.abs() * 2.0**-8)
        return scores, bound

    def forward(self, hidden: Tensor) -> Tensor:
        shape = hidden.shape
        x = hidden.reshape(-1, shape[-1]).float()
        scores, bound = self._approximate(x)
        if not torch.isfinite(scores).all():  # never trust a broken approximation: do it all in fp32
            return (x @ self.weight.float().T).reshape(*shape[:-1], -1)
        idx = scores.topk(self.top, dim=1).indices  # (rows, top)
        exact = (self.weight[idx].float() @ x[:, :, None]).squeeze(-1)
        scores.scatter_(1, idx, exact)
        maybe = scores + bound >= exact.max(dim=1, keepdim=True).values
        maybe.scatter_(1, idx, False)  # already exact
        rows, cols = maybe.nonzero(as_tuple=True)
        scores[rows, cols] = (self.weight[cols].float() * x[rows]).sum(-1)
        self.recomputed = idx.numel() + cols.numel()
        return scores.reshape(*shape[:-1], -1)


def optimize_for_cpu(model) -> nn.Module:
    """Faster decoding in transformers' own modules, in place: fp16-weight linears in the decoder layers
    and a verified int8 LM head. Greedy answers stay those of fp32 (tested on the fixed prompts). A part the
    machine cannot do (no FBGEMM, an odd head shape) is skipped with a warning: slower, still right."""
    if next(model.parameters()).device.type != "cpu" or next(model.parameters()).dtype != torch.float32:
        warnings.warn("optimize_for_cpu expects an fp32 model on the CPU; left unchanged", stacklevel=2)
        return model
    try:
        fp16_weight_linears(model.model.layers)
    except RuntimeError as err:
        warnings.warn(f"fp16-weight linears skipped: {err}", stacklevel=2)
    try:
        model.lm_head = VerifiedInt8Head(model.lm_head)
    except ValueError as err:
        warnings.warn(f"verified int8 head skipped: {err}", stacklevel=2)
    return model
