"""How many torch threads on a small machine? Measures training steps of a small GPT
with 1 and 2 threads, on a quiet machine and next to a busy neighbour process.

    python benchmarks/threads.py            # ~1 minute

This is the measurement behind shared.runtime.default_threads().
"""

from __future__ import annotations

import multiprocessing as mp
import time

import torch


def burn(stop) -> None:
    x = 0
    while not stop.is_set():
        x = (x * 1103515245 + 12345) % 2**31


def steps_per_second(threads: int, steps: int = 30) -> float:
    from month1_transformer.model import GPT, GPTConfig

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, 65, (12, 64))
    for i in range(steps + 5):
        if i == 5:
            start = time.perf_counter()
        _, loss = model(x, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - start)


def main() -> None:
    print(f"{'condition':<22} {'1 thread':>10} {'2 threads':>10}  (train steps/s, baby GPT, batch 12 x 64)")
    for busy in (False, True):
        stop = mp.Event()
        neighbour = mp.Process(target=burn, args=(stop,)) if busy else None
        if neighbour:
            neighbour.start()
        one, two = steps_per_second(1), steps_per_second(2)
        if neighbour:
            stop.set()
            neighbour.join()
        print(f"{'busy neighbour' if busy else 'quiet machine':<22} {one:>10.2f} {two:>10.2f}")


if __name__ == "__main__":
    main()
