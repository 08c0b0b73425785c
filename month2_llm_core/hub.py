"""The Hugging Face hub, offline: load, inspect, save and reload models and tokenizers as local
folders (safetensors), and write a model card for every artefact the month produces.

    python -m month2_llm_core inspect                 # SmolLM2 from the offline store
    python -m month2_llm_core inspect --model DIR     # any saved folder (or a hub id online)

`write_model_card` is the helper every part of the month calls after saving something
(quantized models, adapters, merged models): a README.md with hub metadata (YAML front
matter through huggingface_hub's ModelCard), what it is, how it was made, measured figures.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from shared.config import add_config_arguments, config_from_args
from shared.errors import UserError
from shared.models import SMOLLM2_HUB_ID, ModelUnavailable, load_chat_model


@contextmanager
def explain_load_errors(name: str) -> Iterator[None]:
    """For commands: a model that cannot be loaded (unknown offline, a folder that holds no model,
    an architecture transformers does not know) becomes one line naming it, not a traceback."""
    try:
        yield
    except (ModelUnavailable, OSError, ValueError) as err:
        raise UserError(f"cannot load the model {name!r}: {err}") from None


@dataclass
class ModelInfo:
    name: str
    architecture: str
    parameters: int  # distinct parameters (tied weights counted once)
    trainable: int
    dtype: str
    memory_bytes: int
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    vocab: int
    context: int
    tied_embeddings: bool

    def format(self) -> str:
        rows = asdict(self)
        rows["parameters"] = f"{self.parameters:,} ({self.parameters / 1e6:.1f}M)"
        rows["trainable"] = f"{self.trainable:,}"
        rows["memory_bytes"] = f"{self.memory_bytes:,} ({self.memory_bytes / 2**20:.0f} MiB)"
        return "\n".join(f"{k:<16} {v}" for k, v in rows.items())


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(all, trainable); `parameters()` already yields a tied weight once."""
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def memory_bytes(model: nn.Module) -> int:
    """Bytes held by the weights, each storage counted once: parameters and buffers, plus what
    quantized layers keep outside them (torch's packed dynamic-quantized weights,
    bitsandbytes' per-block absmax)."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    seen: set[int] = set()
    total = 0

    def add(t: torch.Tensor | None) -> None:
        nonlocal total
        if t is None or t.device.type == "meta":
            return
        key = t.untyped_storage().data_ptr() if not t.is_quantized else t.data_ptr()
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes() if not t.is_quantized else t.numel() * t.element_size()

    for module in model.modules():
        if isinstance(module, DynamicLinear):
            weight, bias = module._weight_bias()
            # fp16 packed weights unpack to fp32 for inspection: count them at their packed width.
            width = 2 if module._packed_params.dtype == torch.float16 else weight.element_size()
            total += weight.numel() * width
            add(bias)
    for tensor in [*model.parameters(), *model.buffers()]:
        add(tensor)
        state = getattr(tensor, "quant_state", None)  # bitsandbytes 4-bit
        if state is not None:
            add(state.absmax)
            if getattr(state, "state2", None) is not None:
                add(state.state2.absmax)
        add(getattr(tensor, "SCB", None))  # bitsandbytes 8-bit row scales
    return total


def inspect_model(model: nn.Module, name: str = "") -> ModelInfo:
    cfg = model.config
    n_params, n_trainable = count_parameters(model)
    dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters()})
    return ModelInfo(
        name=name or getattr(cfg, "_name_or_path", "") or type(model).__name__,
        architecture=(cfg.architectures or [type(model).__name__])[0],
        parameters=n_params,
        trainable=n_trainable,
        dtype="/".join(dtypes),
        memory_bytes=memory_bytes(model),
        layers=cfg.num_hidden_layers,
        hidden=cfg.hidden_size,
        heads=cfg.num_attention_heads,
        kv_heads=getattr(cfg, "num_key_value_heads", cfg.num_attention_heads),
        vocab=cfg.vocab_size,
        context=getattr(cfg, "max_position_embeddings", 0),
        tied_embeddings=bool(getattr(cfg, "tie_word_embeddings", False)),
    )


def folder_bytes(path: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


# -- model cards -----------------------------------------------------------------------------------
@dataclass
class CardInfo:
    """What a model card says. Every measured figure goes in `metrics` with the command in `commands`."""

    title: str
    summary: str
    base_model: str = SMOLLM2_HUB_ID
    library: str = "transformers"
    license: str = "apache-2.0"
    tags: list[str] = field(default_factory=list)
    how_made: str = ""
    metrics: dict[str, str] = field(default_factory=dict)
    sections: dict[str, str] = field(default_factory=dict)  # further titled sections (markdown), in order
    commands: list[str] = field(default_factory=list)
    usage: str = ""
    limitations: str = ""


def write_model_card(folder: str | Path, info: CardInfo) -> Path:
    """Write folder/README.md: YAML metadata the hub understands, then the card's sections."""
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(base_model=info.base_model, library_name=info.library, license=info.license,
                         tags=["hybrid-ai-six-months", *info.tags])
    sections = [f"# {info.title}", info.summary]
    if info.how_made:
        sections += ["## How it was made", info.how_made]
    if info.metrics:
        table = ["| measure | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in info.metrics.items())]
        sections += ["## Measured", "\n".join(table)]
    for heading, text in info.sections.items():
        sections += [f"## {heading}", text]
    if info.commands:
        sections += ["## Commands", "```bash\n" + "\n".join(info.commands) + "\n```"]
    if info.usage:
        sections += ["## Usage", f"```python\n{info.usage.strip()}\n```"]
    if info.limitations:
        sections += ["## Limitations", info.limitations]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")
    path = Path(folder) / "README.md"
    card.save(path)
    return path


# -- save and reload ------------------------------------------------------------------------------
def save_folder(model, tokenizer, folder: str | Path, card: CardInfo | None = None) -> Path:
    """save_pretrained (safetensors) for the model and its tokenizer, plus a model card."""
    folder = Path(folder)
    model.save_pretrained(folder)  # safetensors is the default format
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    if card is not None:
        write_model_card(folder, card)
    return folder


@torch.inference_mode()
def logit_difference(a, b, input_ids: torch.Tensor) -> float:
    """Largest absolute difference between two models' logits on `input_ids`."""
    return (a(input_ids=input_ids).logits.float() - b(input_ids=input_ids).logits.float()).abs().max().item()


# -- CLI -------------------------------------------------------------------------------------------
@dataclass
class InspectConfig:
    model: str = field(default="smollm2", metadata={"help": "smollm2 (offline store), a local folder, or a hub id"})
    dtype: str = field(default="float32", metadata={"help": "dtype to load in", "choices": ["float32", "bfloat16"]})
    save: str = field(default="", metadata={"help": "also save it to this folder (safetensors + model card), "
                                                    "reload it and compare logits"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, InspectConfig)


def main(args: argparse.Namespace) -> None:
    cfg = config_from_args(InspectConfig, args)
    if cfg.save and Path(cfg.save).exists() and not Path(cfg.save).is_dir():
        raise UserError(f"--save {cfg.save}: a file is in the way; give a folder")
    with explain_load_errors(cfg.model):
        model, tokenizer = load_chat_model(cfg.model, dtype=getattr(torch, cfg.dtype))
    print(inspect_model(model, cfg.model).format())
    if cfg.save:
        card = CardInfo(
            title=f"{cfg.model} ({cfg.dtype})",
            summary=f"A local copy of {cfg.model} saved by `python -m month2_llm_core inspect`.",
            commands=[f"python -m month2_llm_core inspect --model {cfg.model} --dtype {cfg.dtype} --save {cfg.save}"],
        )
        folder = save_folder(model, tokenizer, cfg.save, card)
        reloaded, _ = load_chat_model(str(folder), dtype=getattr(torch, cfg.dtype))
        ids = tokenizer("The hub, offline.", return_tensors="pt")["input_ids"]
        print(f"saved {folder} ({folder_bytes(folder) / 2**20:.0f} MiB); reloaded logits differ by at most "
              f"{logit_difference(model, reloaded, ids):.2e}")
