"""Quantization on CPU: the same model in several number formats, measured side by side.

Variants (`VARIANTS`):
- fp32, bf16: plain dtypes.
- int8-dyn, int8-dyn-fp32-head: torch's dynamic int8 quantization (`quantize_dynamic`, per-channel
  weights; activations quantized on the fly), with and without the LM head kept in fp32.
- fp16-fast: fp16 weights in transformers' own modules, fp32 arithmetic (`inference.optimize_for_cpu`):
  the first step towards the chat's decoder, which is `lean_llama.FastDecoder` (our own decoder with
  fp16 weights, speculative with an int4 draft where that measures faster).
- bnb-int8, bnb-nf4: bitsandbytes LLM.int8() and 4-bit NormalFloat, loaded with a
  BitsAndBytesConfig (both run on CPU with bitsandbytes >= 0.50; the LM head stays full precision).
- torchao-int8: torchao's int8 weight-only config, only when torchao is installed (it is not a
  project dependency; month2_llm_core/RESULTS.md says why).

For each: memory of the weights, size on disk, greedy decode tokens/s (as a ratio to fp32 in the
same run), perplexity on a held-out text, and the answers to the fixed prompts.

    python -m month2_llm_core quantize                      # the full table
    python benchmarks/month2_quantization.py                # the same, also written as JSON
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import math
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from month2_llm_core.hub import explain_load_errors, folder_bytes, memory_bytes
from month2_llm_core.inference import FIXED_PROMPTS, chat_input_ids, optimize_for_cpu, time_round_robin
from shared.config import add_config_arguments, config_from_args
from shared.corpora import stdlib_prose
from shared.errors import UserError
from shared.models import chat_model_path, load_chat_model
from shared.runtime import quick_mode, set_threads


@contextlib.contextmanager
def quiet_quantization():
    """Silence the known, harmless warnings: torch.ao's deprecation notice, and bitsandbytes 8-bit
    telling us on every matmul that it casts fp32 inputs to fp16."""
    bnb_logger = logging.getLogger("bitsandbytes.autograd._functions")
    level = bnb_logger.level
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.ao.quantization is deprecated")
        warnings.filterwarnings("ignore", message="torch.quantize_per_tensor, torch.quantize_per_channel")
        bnb_logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            bnb_logger.setLevel(level)


# -- building each variant ---------------------------------------------------------------------------
def int8_dynamic(model, keep_head: bool) -> nn.Module:
    """torch's dynamic int8: per-channel int8 weights; activations quantized per call."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    target = model.model if keep_head else model
    with quiet_quantization():
        quantize_dynamic(target, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
    if not keep_head:  # the head was tied to the embedding; it now has its own int8 copy
        model.config.tie_word_embeddings = False
    return model


def torchao_int8(model) -> nn.Module:
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    quantize_(model.model, Int8WeightOnlyConfig())
    return model


def bitsandbytes_model(name: str, bits: int):
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if bits == 8:
        config = BitsAndBytesConfig(load_in_8bit=True)
    else:
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                    bnb_4bit_compute_dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(chat_model_path(name), quantization_config=config,
                                                 dtype=torch.float32)
    return model.eval()


VARIANTS: dict[str, str] = {
    "fp32": "fp32 weights and arithmetic (the baseline)",
    "bf16": "bf16 weights and arithmetic",
    "int8-dyn": "torch dynamic int8 on every Linear, LM head included",
    "int8-dyn-fp32-head": "torch dynamic int8 on the decoder layers, LM head fp32",
    "fp16-fast": "fp16 weights (FBGEMM, fp32 arithmetic) + verified int8 LM head, in transformers' modules",
    "bnb-int8": "bitsandbytes LLM.int8() (8-bit weights, outliers in fp16)",
    "bnb-nf4": "bitsandbytes 4-bit NormalFloat, blocks of 64, fp32 compute",
    "torchao-int8": "torchao int8 weight-only on the decoder layers (only if torchao is installed)",
}


def available_variants() -> list[str]:
    names = list(VARIANTS)
    if importlib.util.find_spec("torchao") is None:
        names.remove("torchao-int8")
    return names


def load_variant(variant: str, name: str = "smollm2", base=None):
    """(model, tokenizer) for `variant`, freshly loaded; the bitsandbytes variants reuse the tokenizer of
    `base` (a (model, tokenizer) pair) when given."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    with quiet_quantization():
        if variant.startswith("bnb-"):
            tokenizer = base[1] if base else load_chat_model(name, progress=False)[1]
            return bitsandbytes_model(name, 8 if variant == "bnb-int8" else 4), tokenizer
        if variant == "bf16":
            return load_chat_model(name, dtype=torch.bfloat16, progress=False)
        model, tokenizer = load_chat_model(name, progress=False)
        if variant == "int8-dyn":
            int8_dynamic(model, keep_head=False)
        elif variant == "int8-dyn-fp32-head":
            int8_dynamic(model, keep_head=True)
        elif variant == "fp16-fast":
            optimize_for_cpu(model)
        elif variant == "torchao-int8":
            torchao_int8(model)
        return model, tokenizer


# -- measurements ----------------------------------------------------------------------------------
def disk_bytes(model) -> tuple[int, str]:
    """Size of what saving writes: save_pretrained (safetensors) where it can, else torch.save."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            model.save_pretrained(tmp)
            return folder_bytes(tmp), "safetensors"
        except Exception:  # packed torch.ao weights are not safetensors-serializable
            torch.save(model.state_dict(), Path(tmp) / "model.pt")
            return folder_bytes(tmp), "torch.save"


@torch.inference_mode()
def perplexity(model, tokenizer, text: str, max_tokens: int, window: int = 512) -> float:
    """exp(mean next-token loss) over the first `max_tokens` tokens of `text`, in windows."""
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"][:, :max_tokens]
    total, count = 0.0, 0
    for start in range(0, ids.size(1) - 1, window):
        chunk = ids[:, start:start + window]
        if chunk.size(1) < 2:
            break
        loss = model(input_ids=chunk, labels=chunk).loss.item()
        total += loss * (chunk.size(1) - 1)
        count += chunk.size(1) - 1
    return math.exp(total / count)


def greedy_runner(model, tokenizer, max_new_tokens: int) -> Callable[[str], list[int]]:
    """prompt -> new token ids, with plain greedy `generate` (the same call for every variant)."""

    @torch.inference_mode()
    def run(prompt: str) -> list[int]:
        ids = chat_input_ids(tokenizer, prompt)
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=tokenizer.pad_token_id)
        return out[0, ids.size(1):].tolist()

    return run


def held_out_text() -> str:
    """The last 20,000 characters of the Python docs prose (the tokenizer part trains on the start)."""
    return stdlib_prose()[-20_000:]


@dataclass
class QuantResult:
    variant: str
    memory_mib: float
    disk_mib: float
    disk_format: str
    tokens_per_s: float
    speed_vs_fp32: float
    perplexity: float
    same_answers: int  # prompts whose answer equals fp32's
    answers: list[str]


@dataclass
class QuantConfig:
    variants: str = field(default="all", metadata={"help": "comma-separated subset of: " + ", ".join(VARIANTS)})
    model: str = field(default="smollm2", metadata={"help": "model to quantize"})
    max_new_tokens: int = field(default=48, metadata={"help": "tokens per answer"})
    prompts: int = field(default=len(FIXED_PROMPTS), metadata={"help": "how many of the fixed prompts"})
    ppl_tokens: int = field(default=4096, metadata={"help": "held-out tokens for perplexity"})
    disk: bool = field(default=True, metadata={"help": "measure the size on disk (saves each variant once)"})
    threads: int = field(default=1, metadata={"help": "torch threads"})
    out: str = field(default="", metadata={"help": "also write the results as JSON here"})

    def __post_init__(self) -> None:
        known = available_variants()
        unknown = [n for n in self.variant_list() if n not in known]
        if unknown:
            missing = " (torchao is not installed)" if unknown == ["torchao-int8"] else ""
            raise ValueError(f"--variants: unknown {', '.join(unknown)}{missing}; choose from {', '.join(known)}")
        if not 1 <= self.prompts <= len(FIXED_PROMPTS):
            raise ValueError(f"--prompts must be 1-{len(FIXED_PROMPTS)}, got {self.prompts}")
        if min(self.max_new_tokens, self.ppl_tokens, self.threads) < 1:
            raise ValueError("--max-new-tokens, --ppl-tokens and --threads must be at least 1")

    def variant_list(self) -> list[str]:
        names = available_variants() if self.variants == "all" else [n.strip() for n in self.variants.split(",")]
        return ["fp32", *[n for n in names if n != "fp32"]]  # fp32 first: the baseline


def quantization_table(cfg: QuantConfig, progress: Callable[[str], None] = print) -> list[QuantResult]:
    """Load every variant (about 2 GB together), time them taking turns prompt by prompt, then measure
    perplexity, memory and disk size one by one."""
    set_threads(cfg.threads)
    prompts = FIXED_PROMPTS[: cfg.prompts]
    models = {}
    for variant in cfg.variant_list():
        progress(f"[quantize] load {variant}: {VARIANTS[variant]}")
        with explain_load_errors(cfg.model):
            models[variant] = load_variant(variant, cfg.model, models.get("fp32"))
    with quiet_quantization():
        progress("[quantize] greedy answers to the fixed prompts, variants taking turns")
        timings = time_round_robin({v: greedy_runner(m, t, cfg.max_new_tokens) for v, (m, t) in models.items()},
                                   prompts)
        text = held_out_text()
        results: list[QuantResult] = []
        for variant, (model, tokenizer) in models.items():
            progress(f"[quantize] perplexity and size: {variant}")
            ppl = perplexity(model, tokenizer, text, cfg.ppl_tokens)
            # Saving last: bitsandbytes' save_pretrained leaves an NF4 model broken in memory on CPU
            # (perplexity 10^7 afterwards; the saved folder reloads fine).
            disk, fmt = disk_bytes(model) if cfg.disk else (0, "-")
            answers = [tokenizer.decode(ids, skip_special_tokens=True) for ids in timings[variant].outputs]
            base = timings["fp32"]
            results.append(QuantResult(
                variant=variant, memory_mib=memory_bytes(model) / 2**20, disk_mib=disk / 2**20, disk_format=fmt,
                tokens_per_s=timings[variant].tokens_per_s,
                speed_vs_fp32=timings[variant].tokens_per_s / base.tokens_per_s,
                perplexity=ppl,
                same_answers=sum(a == b for a, b in zip(timings[variant].outputs, base.outputs)),
                answers=answers,
            ))
    return results


def format_table(results: Sequence[QuantResult]) -> str:
    n = len(results[0].answers)
    lines = [f"{'variant':<20} {'memory MiB':>10} {'disk MiB':>9} {'format':>11} {'tok/s':>7} {'vs fp32':>8} "
             f"{'ppl':>7} {'same answers':>13}"]
    for r in results:
        lines.append(f"{r.variant:<20} {r.memory_mib:>10.0f} {r.disk_mib:>9.0f} {r.disk_format:>11} "
                     f"{r.tokens_per_s:>7.1f} {r.speed_vs_fp32:>7.2f}x {r.perplexity:>7.2f} {r.same_answers:>9}/{n}")
    lines.append("")
    for i, prompt in enumerate(FIXED_PROMPTS[:n]):
        lines.append(f"Q: {prompt}")
        for r in results:
            lines.append(f"  {r.variant:<20} {r.answers[i][:110]!r}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, QuantConfig)


def main(args: argparse.Namespace) -> None:
    cfg = config_from_args(QuantConfig, args)
    if cfg.out and Path(cfg.out).is_dir():
        raise UserError(f"--out {cfg.out}: a folder; give a file name for the JSON")
    if quick_mode():
        cfg.prompts, cfg.ppl_tokens, cfg.max_new_tokens = min(cfg.prompts, 2), min(cfg.ppl_tokens, 512), 16
    results = quantization_table(cfg)
    print(format_table(results))
    if cfg.out:
        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.out).write_text(json.dumps([asdict(r) for r in results], indent=1))
        print(f"[quantize] wrote {cfg.out}")
