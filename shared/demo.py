"""A one-minute end-to-end check of the offline chat model (the product demo is `make demo`, month 6):
load it from the cache and answer questions, streamed.

    python -m shared.demo                      # the default questions
    python -m shared.demo --question "What is 2 + 2?"
"""

from __future__ import annotations

import argparse
import time

import torch

from shared.models import SMOLLM2, load_chat_model
from shared.runtime import set_threads

DEFAULT_QUESTIONS = ("What is the capital of France?", "Write a Python function that adds two numbers.")


def answer(model, tokenizer, question: str, max_new_tokens: int = 64, streamer=None) -> str:
    """Greedy answer to one user message, through the model's chat template."""
    messages = [{"role": "user", "content": question}]
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = model.generate(
            **inputs, max_new_tokens=max_new_tokens, do_sample=False, streamer=streamer,
            pad_token_id=tokenizer.eos_token_id,
        )
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=SMOLLM2, help="'smollm2' (offline), a local folder or a hub id")
    parser.add_argument("--question", action="append", help="ask this instead (repeatable)")
    parser.add_argument("--max-new-tokens", type=int, default=80)
    args = parser.parse_args(argv)

    from transformers import TextStreamer

    threads = set_threads()
    start = time.perf_counter()
    model, tokenizer = load_chat_model(args.model)
    print(f"[demo] loaded {args.model} in {time.perf_counter() - start:.1f} s ({threads} torch threads)")
    streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    for question in args.question or DEFAULT_QUESTIONS:
        print(f"\nQ: {question}\nA: ", end="", flush=True)
        start = time.perf_counter()
        answer(model, tokenizer, question, args.max_new_tokens, streamer=streamer)
        print(f"[{time.perf_counter() - start:.1f} s]")


if __name__ == "__main__":
    main()
