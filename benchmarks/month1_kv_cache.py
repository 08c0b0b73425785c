"""Month 1: generation speed with and without the KV cache, same model, same tokens.

    python benchmarks/month1_kv_cache.py                 # ~1 minute on 1 thread

Prints tokens/s for each context size and the cached/uncached ratio, and checks the
greedy tokens are identical. The model is randomly initialised: speed does not depend
on training.
"""

from __future__ import annotations

import argparse
import time

import torch

from month1_transformer.model import GPT, GPTConfig


def tokens_per_second(model: GPT, prompt: torch.Tensor, new_tokens: int, use_cache: bool) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    out = model.generate(prompt, new_tokens, temperature=0, use_cache=use_cache)
    return new_tokens / (time.perf_counter() - start), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{'model':<34} {'new tokens':>10} {'no cache tok/s':>15} {'cache tok/s':>12} {'ratio':>7}  same tokens")
    for block, n_layer, n_embd, new in ((64, 4, 128, 60), (256, 6, 256, 250), (1024, 6, 256, 1000)):
        torch.manual_seed(0)
        cfg = GPTConfig(vocab_size=65, block_size=block, n_layer=n_layer, n_head=4, n_embd=n_embd, pos_enc="rope")
        model = GPT(cfg).eval()
        prompt = torch.randint(0, 65, (1, 4))
        tokens_per_second(model, prompt, 8, True)  # warm-up
        plain, out_plain = tokens_per_second(model, prompt, new, use_cache=False)
        cached, out_cached = tokens_per_second(model, prompt, new, use_cache=True)
        name = f"block {block}, {n_layer}x{n_embd}"
        print(f"{name:<34} {new:>10} {plain:>15.1f} {cached:>12.1f} {cached / plain:>6.2f}x  "
              f"{torch.equal(out_plain, out_cached)}")


if __name__ == "__main__":
    main()
