"""Sample text from a trained checkpoint.

    python -m month1_transformer sample --ckpt runs/month1/ckpt.pt --prompt "ROMEO:" --top-p 0.9
"""

from __future__ import annotations

import argparse

import torch

from month1_transformer.model import GPT, GPTConfig
from month1_transformer.tokenizer import tokenizer_from_dict
from shared import checkpoint
from shared.runtime import pick_device, set_threads


def load_model(path: str, device: torch.device | str = "cpu"):
    """(model, tokenizer) from a checkpoint written by `train`."""
    state = checkpoint.load(path)
    model = GPT(GPTConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), tokenizer_from_dict(state["tokenizer"])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", default="runs/month1/ckpt.pt", help="checkpoint from `train`")
    parser.add_argument("--prompt", default="\n", help="text to continue")
    parser.add_argument("--max-new-tokens", type=int, default=300)
    parser.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--num-samples", type=int, default=1)
    parser.add_argument("--no-cache", action="store_true", help="generate without the KV cache")
    parser.add_argument("--seed", type=int, default=1337)


def main(args: argparse.Namespace) -> None:
    set_threads()
    device = pick_device()
    model, tokenizer = load_model(args.ckpt, device)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    prompt = torch.tensor([tokenizer.encode(args.prompt)], dtype=torch.long, device=device)
    for i in range(args.num_samples):
        out = model.generate(
            prompt, args.max_new_tokens, args.temperature, args.top_k, args.top_p,
            use_cache=not args.no_cache, generator=generator,
        )
        if args.num_samples > 1:
            print(f"--- sample {i + 1} ---")
        print(tokenizer.decode(out[0].tolist()))
