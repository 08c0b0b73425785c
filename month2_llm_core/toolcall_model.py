"""The tool-call model: SmolLM2 + the committed LoRA adapter, loaded and asked for calls (month 6 uses this).

    from month2_llm_core.toolcall_model import load_toolcall_model, predict_calls
    model, tokenizer = load_toolcall_model()          # merged: a plain LlamaForCausalLM
    predict_calls(model, tokenizer, ["What time is it in Tokyo?"])
    # [{'name': 'get_current_time', 'arguments': {'timezone': 'Asia/Tokyo'}}]

Also the pieces training and evaluation share: the base model in fp32 or 4-bit NF4
(`load_base_model`), an adapter saved and loaded from disk, and greedy answers in batches.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from month2_llm_core.toolcalls import TOOLS, ToolSpec, build_prompt, parse_tool_call
from shared.models import ALIASES, SMOLLM2, SMOLLM2_HUB_ID, chat_model_path, load_chat_model

ADAPTER_DIR = Path(__file__).resolve().parent / "adapters" / "toolcall-lora"  # the committed adapter
# The adapter trained on the mixed task (tool lists, unseen tools, no tool): configs/toolcall_mixed.toml
MIXED_ADAPTER_DIR = ADAPTER_DIR.parent / "toolcall-mixed-lora"
# Greedy budget per answer: the longest expected call (first 100 held-out, 800 training examples) is
# 35 tokens with its end-of-turn token; a longer answer is wrong anyway.
MAX_NEW_TOKENS = 48
BATCH_SIZE = 8  # prompts decoded together, left-padded
ToolLists = list[tuple[ToolSpec, ...]] | tuple[ToolSpec, ...] | None  # one list for all requests, or one each


def load_base_model(name: str = SMOLLM2, qlora: bool = False, gradient_checkpointing: bool = False):
    """(model, tokenizer), both from the same model folder: fp32 weights, or with `qlora`
    4-bit NF4 weights (bitsandbytes, fp32 compute) prepared for k-bit training (frozen,
    norms in fp32). Gradient checkpointing, if asked, is set up here for both."""
    ckpt_kwargs = {"use_reentrant": False}  # the non-reentrant form needs no grad on the inputs
    if not qlora:
        model, tokenizer = load_chat_model(name)
        if gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=ckpt_kwargs)
        return model, tokenizer
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    path = chat_model_path(name)
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(path, quantization_config=quant, dtype=torch.float32)
    # bitsandbytes 0.50 repacks 4-bit weights into an AVX512-BF16 layout during no-grad eval
    # forwards, and state_dict() (checkpoints, save_pretrained) unpacks them incompletely: the
    # model is garbage afterwards (measured: loss 1.02 -> 17.2). The plain path is faster here too.
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
    model = prepare_model_for_kbit_training(
        model, use_gradient_checkpointing=gradient_checkpointing, gradient_checkpointing_kwargs=ckpt_kwargs
    )
    model.eval()
    return model, AutoTokenizer.from_pretrained(path)


def require_adapter(adapter_dir: str | Path) -> Path:
    """`adapter_dir` as a Path, if it holds a saved adapter (checked before any model is loaded)."""
    if not (Path(adapter_dir) / "adapter_config.json").is_file():
        raise FileNotFoundError(f"not an adapter folder (no adapter_config.json): {adapter_dir}")
    return Path(adapter_dir)


def load_adapter(model, adapter_dir: str | Path):
    """Base model + a saved adapter (not merged), in eval mode."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(require_adapter(adapter_dir))).eval()


def save_adapter(model, adapter_dir: str | Path, name: str = SMOLLM2) -> Path:
    """save_pretrained, with the base named portably: peft records the folder it loaded, a
    path in this machine's cache; for the offline SmolLM2 we record its hub id instead."""
    adapter_dir = Path(adapter_dir)
    model.save_pretrained(adapter_dir)
    if ALIASES.get(name) == SMOLLM2:
        config_path = adapter_dir / "adapter_config.json"
        config = json.loads(config_path.read_text())
        config["base_model_name_or_path"] = SMOLLM2_HUB_ID
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return adapter_dir


def load_toolcall_model(adapter_dir: str | Path = ADAPTER_DIR, merge: bool = True, name: str = SMOLLM2):
    """(model, tokenizer) for month 6: SmolLM2 + the committed tool-call adapter. Merged by default:
    a plain LlamaForCausalLM, no peft at inference (the committed run's merge check: 16/16 greedy
    answers the same as unmerged). Prompt it with `toolcalls.build_prompt`, or call `predict_calls`."""
    model, tokenizer = load_chat_model(name)
    model = load_adapter(model, adapter_dir)
    if merge:
        model = model.merge_and_unload()
    return model.eval(), tokenizer


@torch.no_grad()
def generate_answers(model, tokenizer, requests: list[str], max_new_tokens: int = MAX_NEW_TOKENS,
                     batch_size: int = BATCH_SIZE, tools: ToolLists = None, prefix: str = "") -> list[str]:
    """Greedy answers to tool-call prompts, decoded in left-padded batches; the text stops
    at the end-of-turn token (special tokens dropped). `tools`: one tool list for every request
    (a tuple of specs), one list per request, or None for the four built-ins. `prefix` is written
    as the start of every answer (and returned with it): `'{"name": "'` forces a call."""
    if tools is None or (tools and isinstance(tools[0], ToolSpec)):
        tools = [tuple(tools or TOOLS)] * len(requests)
    if len(tools) != len(requests):
        raise ValueError(f"{len(tools)} tool lists for {len(requests)} requests")
    was_training = model.training
    model.eval()
    answers: list[str] = []
    for start in range(0, len(requests), batch_size):
        prompts = [build_prompt(tokenizer, r, t) + prefix for r, t in
                   zip(requests[start : start + batch_size], tools[start : start + batch_size])]
        enc = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
        out = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        answers += [prefix + a for a in
                    tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)]
    model.train(was_training)
    return answers


def predict_calls(model, tokenizer, requests: list[str], max_new_tokens: int = MAX_NEW_TOKENS,
                  tools: ToolLists = None) -> list[dict[str, Any] | None]:
    """The parsed tool call for each request (None where the answer is not a strict call, the
    "no tool" answer included; `toolcalls.parse_answer` on `generate_answers` tells them apart).
    `tools` as in `generate_answers`."""
    answers = generate_answers(model, tokenizer, requests, max_new_tokens, tools=tools)
    return [parse_tool_call(a) for a in answers]
