"""Month 4 benchmark: what the mixture of adapters costs against the alternatives a user would consider.

1. Memory (each in its own fresh process, resident set size after loading, shared.memory):
   - `base`:    SmolLM2 alone (what one full fine-tuned model costs: the same weights, other values);
   - `mixture`: SmolLM2 + the four committed expert adapters resident (MixtureOfAdapters.load()).
   Four full fine-tuned models are estimated as 4 x the measured `base` (and 4 x the weight bytes).
2. Speed, in the mixture's process, same prompts, greedy, through the same decode loop
   (month2_llm_core.inference.stream_tokens):
   - the expert as the mixture runs it (LoRA unmerged, switched per request with `set_adapter`);
   - the same adapter merged into a plain copy of the weights (a dedicated fine-tuned model);
   - the cost of a switch itself, and of routing one request (MiniLM embedding + the 4 x 384 classifier).
   The quality side (one model with all four merged, per domain) is measured by
   `python -m month4_moe train-experts --train false --config experts` (comparison.json).

    OMP_NUM_THREADS=1 python benchmarks/month4_experts.py
    OMP_NUM_THREADS=1 python benchmarks/month4_experts.py --tokens 16 --rounds 1   # quicker

Prints both tables with ratios; writes runs/bench_month4_experts/results.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import time
from pathlib import Path

OUT = Path("runs/bench_month4_experts")
PROMPTS = ("What is 347 + 589?", "Tickets cost 12 euros each and we need 35 of them. What do we pay?",
           "Compute 806 - 279.", "How much is 25% of 640?")


def memory_worker(kind: str, out: Path) -> None:
    """Load `kind` ("base" or "mixture") in this fresh process; write its RSS and weight bytes to `out`."""
    from shared.memory import rss_bytes
    from shared.runtime import set_threads

    set_threads()
    import torch  # noqa: F401  (import cost is not the model's)
    import transformers  # noqa: F401

    before = rss_bytes()
    if kind == "base":
        from shared.models import load_chat_model

        model, _ = load_chat_model(progress=False)
        adapter_bytes = {}
    else:
        from month4_moe.experts import MixtureOfAdapters

        moa = MixtureOfAdapters.load(router_dir=None)
        model, adapter_bytes = moa.model, moa.adapter_bytes()
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    out.write_text(json.dumps({"kind": kind, "rss_before": before, "rss_after": rss_bytes(),
                               "parameter_bytes": weights, "adapter_bytes": adapter_bytes}))


def measure_memory() -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    results = {}
    for kind in ("base", "mixture"):
        path = OUT / f"memory_{kind}.json"
        subprocess.run([sys.executable, __file__, "--memory-worker", kind, "--worker-out", str(path)], check=True)
        results[kind] = json.loads(path.read_text())
    return results


def speed(tokens: int, rounds: int) -> dict:
    """Tokens/s of the mixture's math expert vs the same adapter merged into plain weights, taking turns."""
    import torch

    from month2_llm_core.inference import chat_input_ids, stream_tokens
    from month4_moe.experts import MixtureOfAdapters
    from month4_moe.router import default_router
    from shared.runtime import set_threads

    threads = set_threads()
    moa = MixtureOfAdapters.load(router_dir=None)
    with moa.use("math"):  # a plain model with the math adapter merged in: a dedicated fine-tuned model
        dedicated = copy.deepcopy(moa.model).merge_and_unload(adapter_names=["math"]).eval()
    ids = [chat_input_ids(moa.tokenizer, p) for p in PROMPTS]
    eos = {moa.tokenizer.eos_token_id}
    timing = {"mixture (math adapter, unmerged)": 0.0, "dedicated model (math adapter merged)": 0.0}
    produced = dict.fromkeys(timing, 0)
    same = 0
    for _ in range(rounds):
        for x in ids:
            outs = {}
            for label in timing:  # take turns prompt by prompt, so machine load hits both alike
                start = time.perf_counter()
                if label.startswith("mixture"):
                    with moa.use("math"):
                        outs[label] = list(stream_tokens(moa.model, x, tokens, eos))
                else:
                    outs[label] = list(stream_tokens(dedicated, x, tokens, eos))
                timing[label] += time.perf_counter() - start
                produced[label] += len(outs[label])
            same += len(set(map(tuple, outs.values()))) == 1
    switches = 2000
    start = time.perf_counter()
    for i in range(switches):
        moa.model.set_adapter(("math", "code")[i % 2])
    switch_us = (time.perf_counter() - start) / switches * 1e6
    router = default_router()
    router.route(PROMPTS[0])  # load MiniLM once, outside the timing
    start = time.perf_counter()
    for p in PROMPTS * 5:
        router.route(p)
    route_ms = (time.perf_counter() - start) / (len(PROMPTS) * 5) * 1e3
    return {"threads": threads, "tokens_per_s": {k: produced[k] / timing[k] for k in timing},
            "same_tokens": f"{same}/{rounds * len(PROMPTS)}", "switch_us": switch_us, "route_ms": route_ms,
            "torch": torch.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per prompt (greedy)")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the prompts")
    parser.add_argument("--memory-worker", choices=("base", "mixture"), help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_worker:
        memory_worker(args.memory_worker, args.worker_out)
        return
    mib = 1024 * 1024
    memory = measure_memory()
    base, mixture = memory["base"], memory["mixture"]
    one = base["rss_after"] - base["rss_before"]
    four_full = 4 * one
    mix = mixture["rss_after"] - mixture["rss_before"]
    adapters = mixture["adapter_bytes"]
    print("memory (RSS added by loading, each in a fresh process)")
    print(f"  one model (SmolLM2, fp32):                 {one / mib:8.0f} MiB  "
          f"(weights {base['parameter_bytes'] / mib:.0f} MiB)")
    print(f"  four full fine-tuned models (4 x measured): {four_full / mib:8.0f} MiB  (weights "
          f"{4 * base['parameter_bytes'] / mib:.0f} MiB)")
    print(f"  mixture: base + 4 adapters resident:        {mix / mib:8.0f} MiB  = {mix / four_full:.2f}x four models, "
          f"{mix / one:.2f}x one")
    print("  adapters' own weights: " + ", ".join(f"{k} {v / mib:.2f} MiB" for k, v in adapters.items())
          + f" (total {sum(adapters.values()) / mib:.1f} MiB)")
    s = speed(args.tokens, args.rounds)
    print(f"speed (greedy, {args.tokens} new tokens x {len(PROMPTS)} prompts x {args.rounds} rounds, "
          f"{s['threads']} thread(s), taking turns; same tokens on {s['same_tokens']} prompts)")
    ref = s["tokens_per_s"]["dedicated model (math adapter merged)"]
    for label, tps in s["tokens_per_s"].items():
        print(f"  {label:40s} {tps:6.1f} tokens/s  ({tps / ref:.2f}x the dedicated model)")
    print(f"  switching adapter (set_adapter): {s['switch_us']:.0f} us; routing one request: {s['route_ms']:.1f} ms")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps({"memory": memory, "speed": s, "args": vars(args)}, indent=2,
                                                 default=str) + "\n")
    print(f"written to {OUT / 'results.json'}")


if __name__ == "__main__":
    main()
