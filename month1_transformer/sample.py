"""Sample text from a trained checkpoint.

    python -m month1_transformer sample --ckpt runs/month1/ckpt.pt --prompt "ROMEO:" --top-p 0.9
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import torch

from month1_transformer.model import GPT, GPTConfig
from month1_transformer.tokenizer import tokenizer_from_dict
from shared import checkpoint
from shared.config import add_config_arguments, config_from_args
from shared.errors import UserError
from shared.runtime import pick_device, set_threads


@dataclass
class SampleConfig:
    ckpt: str = field(default="runs/month1/ckpt.pt", metadata={"help": "checkpoint written by `train`"})
    prompt: str = field(default="\n", metadata={"help": "text to continue"})
    max_new_tokens: int = field(default=300, metadata={"help": "tokens to generate"})
    temperature: float = field(default=0.8, metadata={"help": "0 = greedy"})
    top_k: int | None = field(default=None, metadata={"help": "keep the k most likely tokens"})
    top_p: float | None = field(default=None, metadata={"help": "keep the smallest set with this probability"})
    num_samples: int = field(default=1, metadata={"help": "independent samples"})
    cache: bool = field(default=True, metadata={"help": "generate with the KV cache"})
    seed: int = 1337

    def __post_init__(self) -> None:
        if self.max_new_tokens < 0 or self.num_samples < 1:
            raise ValueError("--max-new-tokens must be >= 0 and --num-samples >= 1")
        if self.temperature < 0:
            raise ValueError(f"--temperature must be >= 0, got {self.temperature}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"--top-k must be >= 1, got {self.top_k}")


def load_model(path: str, device: torch.device | str = "cpu"):
    """(model, tokenizer) from a checkpoint written by `train`."""
    state = checkpoint.load(path)
    if not isinstance(state, dict) or not {"model", "model_config", "tokenizer"} <= state.keys():
        raise UserError(f"{path} is not a month-1 checkpoint (no GPT config and tokenizer in it): pass the "
                        "ckpt.pt that `python -m month1_transformer train` wrote")
    try:
        model = GPT(GPTConfig(**state["model_config"]))
        model.load_state_dict(state["model"])
    except (TypeError, ValueError, RuntimeError) as err:
        detail = " ".join(str(err).split())[:160]
        raise UserError(f"{path} was written by another version of month 1 ({detail}); train it again") from None
    return model.to(device).eval(), tokenizer_from_dict(state["tokenizer"])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, SampleConfig)


def main(args: argparse.Namespace) -> None:
    cfg = config_from_args(SampleConfig, args)
    set_threads()
    device = pick_device()
    model, tokenizer = load_model(cfg.ckpt, device)
    try:
        prompt_ids = tokenizer.encode(cfg.prompt)
    except ValueError as err:  # a character the tokenizer never saw
        raise UserError(f"--prompt: {err}") from None
    if not prompt_ids:
        raise UserError("--prompt is empty: give at least one character to continue")
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    prompt = torch.tensor([prompt_ids], dtype=torch.long, device=device)
    for i in range(cfg.num_samples):
        out = model.generate(
            prompt, cfg.max_new_tokens, cfg.temperature, cfg.top_k, cfg.top_p,
            use_cache=cfg.cache, generator=generator,
        )
        if cfg.num_samples > 1:
            print(f"--- sample {i + 1} ---")
        print(tokenizer.decode(out[0].tolist()))
