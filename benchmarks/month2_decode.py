"""Month 2 benchmark: decode speed of SmolLM2 on CPU, every path as a ratio to plain fp32 `generate`.

All paths run in one process, taking turns prompt by prompt on the fixed prompts (greedy, up to
--max-new-tokens each), so a change in machine load slows them alike. "same" counts prompts whose
tokens equal plain fp32 generate's, token for token.

    OMP_NUM_THREADS=1 python benchmarks/month2_decode.py                   # ~10 min on a busy 2-core box
    OMP_NUM_THREADS=1 python benchmarks/month2_decode.py --max-new-tokens 16 --prompts 2   # a quick look

Rows:
  fp32 generate                the baseline
  fp32 generate, static cache  generate(cache_implementation="static")
  fp32 lean loop               inference.stream_tokens: the model called directly with a DynamicCache
  fp32 TextIteratorStreamer    generate in a thread, text through transformers' streamer
  bf16 generate                the whole model in bf16
  fp16 modules, generate       inference.optimize_for_cpu: transformers' modules with fp16 weights (fp32
                               arithmetic) and the verified int8 head
  fp16 modules, lean loop      the same model with the lean loop
  LeanLlama fp32 / fp16        lean_llama.LeanLlama, our own decoder, fp32 or fp16-stored weights
  4-bit draft alone            LeanLlama with int4 weights and bf16 activations (not fp32's tokens)
  speculative                  lean_llama.FastDecoder: the fp16 LeanLlama checks the 4-bit draft's proposals
                               (the chat takes this or LeanLlama fp16, whichever its first-use measurement
                               finds faster on the machine: month2_llm_core/decode_path.py)
  llama.cpp (Q4_1 GGUF)        the chat's llamacpp backend, greedy, on the same prompt ids; only when the optional
                               llama-cpp-python is installed (pip install -e '.[llamacpp]', a source build)
Then, separately (too slow to run on every prompt): the KV cache on/off on two prompts, and one
batched, left-padded generate call for all prompts against one call per prompt.

Optional sections (--sections, comma-separated; default: paths,kv,batch):
  steps        LeanLlama's cost per call against the number of new tokens (1 = decoding, more = verifying
               drafted tokens), fp32 / fp16 / 4-bit, after a 39-token prompt; and the prompt's prefill
  micro        576->1536 linears at batch 1, weights from memory: fp32, FBGEMM fp16, int8 x bf16, torchao
  profile      where one decode step spends its time (torch profiler), fp32 and the fast path
  experiments  ideas that did not make the fast path: int8 weights with bf16 activations, prompt-lookup and
               int8-draft speculative decoding (all with the verified head, lean loop or generate)
"""

from __future__ import annotations

import argparse
import copy
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from month2_llm_core.decode_path import cpu_model_name
from month2_llm_core.inference import (
    FIXED_PROMPTS,
    chat_input_ids,
    eos_ids,
    generate_batch,
    optimize_for_cpu,
    stream_tokens,
    time_round_robin,
)
from month2_llm_core.lean_llama import (
    FastDecoder,
    LeanLlama,
    fp16_linear,
    int4_bf16_linear,
    lean_tokens,
    transposed_linear,
)
from shared.config import add_config_arguments, config_from_args
from shared.errors import UserError
from shared.models import load_chat_model
from shared.runtime import set_threads

SECTIONS = ("paths", "kv", "batch", "steps", "micro", "profile", "experiments")


@dataclass
class DecodeBenchConfig:
    max_new_tokens: int = field(default=64, metadata={"help": "greedy tokens per prompt"})
    prompts: int = field(default=len(FIXED_PROMPTS), metadata={"help": "how many of the fixed prompts"})
    threads: int = field(default=1, metadata={"help": "torch threads"})
    out: str = field(default="runs/bench_month2/decode.json", metadata={"help": "the results as JSON"})
    sections: str = field(default="paths,kv,batch", metadata={"help": "comma-separated: " + ", ".join(SECTIONS)})

    def __post_init__(self) -> None:
        unknown = sorted(set(self.sections.split(",")) - set(SECTIONS))
        if unknown:
            raise ValueError(f"--sections: unknown {unknown}; choose from {', '.join(SECTIONS)}")
        if not 1 <= self.prompts <= len(FIXED_PROMPTS) or self.max_new_tokens < 1 or self.threads < 1:
            raise ValueError(f"--prompts must be 1-{len(FIXED_PROMPTS)}; --max-new-tokens and --threads at least 1")


class Int8WeightLinear(torch.nn.Module):
    """Per-row int8 weights, bf16 activations, torch's _weight_int8pack_mm (an experiment, not the fast path:
    bf16 activations change greedy answers)."""

    def __init__(self, linear):
        super().__init__()
        w = linear.weight.detach().float()
        scale = (w.abs().amax(1).clamp(min=1e-8) / 127).to(torch.bfloat16)
        self.register_buffer("q", torch.round(w / scale.float()[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale)

    def forward(self, x):
        flat = x.reshape(-1, x.size(-1)).to(torch.bfloat16)
        return torch.ops.aten._weight_int8pack_mm(flat, self.q, self.scale).reshape(*x.shape[:-1], -1).to(x.dtype)


def int8_weight_model(model):
    for layer in model.model.layers:
        for module in list(layer.modules()):
            for name, child in list(module.named_children()):
                if isinstance(child, torch.nn.Linear):
                    setattr(module, name, Int8WeightLinear(child))
    model.lm_head = Int8WeightLinear(model.lm_head)
    return model


def micro(repeats=5, count=48):
    """Decoder-sized linears (576->1536) at batch 1, microseconds per call. `count` different layers
    (170 MB in fp32) are called in turn, as decoding does, so weights come from memory, not the cache."""
    from month2_llm_core.inference import fp16_weight_linears

    torch.manual_seed(0)
    linears = [torch.nn.Linear(576, 1536, bias=False) for _ in range(count)]
    x = torch.randn(1, 576)
    ways = {"fp32 (MKL)": linears,
            "fp16 weights, FBGEMM": [fp16_weight_linears(copy.deepcopy(li)) for li in linears],
            "int8 weights x bf16 (torch)": [Int8WeightLinear(li) for li in linears]}
    try:
        from torchao.quantization import Int8WeightOnlyConfig, quantize_

        wrapped = [torch.nn.Sequential(copy.deepcopy(li)) for li in linears]
        for w in wrapped:
            quantize_(w, Int8WeightOnlyConfig())
        ways["torchao int8 weight-only (eager)"] = wrapped
    except ImportError:
        print("(torchao not installed: no torchao row)")
    print(f"\n{count} different 576->1536 linears called in turn, batch 1:")
    with torch.inference_mode():
        for name, modules in ways.items():
            for module in modules:
                module(x)
            start = time.perf_counter()
            for _ in range(repeats):
                for module in modules:
                    module(x)
            print(f"  {name:<34} {1e6 * (time.perf_counter() - start) / (repeats * count):7.0f} us per call")


def profile_step(models, tok, steps=10):
    """Time per decode step by operator, after a prompt of ~40 tokens."""
    from torch.profiler import profile
    from transformers import DynamicCache

    for name, model in models.items():
        with torch.inference_mode():
            cache = DynamicCache(config=model.config)
            model(input_ids=chat_input_ids(tok, FIXED_PROMPTS[2]), cache=cache, use_cache=True, logits_to_keep=1)
            token = torch.tensor([[500]])
            for _ in range(3):
                model(input_ids=token, cache=cache, use_cache=True)
            with profile() as prof:
                start = time.perf_counter()
                for _ in range(steps):
                    model(input_ids=token, cache=cache, use_cache=True)
                wall = (time.perf_counter() - start) / steps
        ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
        total = sum(e.self_cpu_time_total for e in ops) / steps / 1000
        print(f"\n{name}: {1000 * wall:.0f} ms per step with the profiler on; by operator (ms per step):")
        for e in ops[:5]:
            print(f"  {e.key:<45} {e.self_cpu_time_total / steps / 1000:6.1f}")
        print(f"  {'everything else':<45} {total - sum(e.self_cpu_time_total for e in ops[:5]) / steps / 1000:6.1f}")


def step_costs(model, tok, repeats=10):
    """Milliseconds per LeanLlama.step for 1..7 new tokens: what speculative decoding trades."""
    prompt = chat_input_ids(tok, FIXED_PROMPTS[1])[0].tolist()
    decoders = {"fp32": LeanLlama(model, transposed_linear),
                "fp16": LeanLlama(model, fp16_linear, head=fp16_linear(model.lm_head.weight)),
                "4-bit": LeanLlama(model, int4_bf16_linear, head=int4_bf16_linear(model.lm_head.weight))}
    sizes = (1, 2, 4, 7)
    print(f"\nms per call after a {len(prompt)}-token prompt  " + "  ".join(f"{t:>3} new" for t in sizes) + "  prefill")
    results = {}
    for name, lean in decoders.items():
        row = []
        for t in sizes:
            lean.reset()
            lean.step(prompt, last_only=True)
            for _ in range(2):  # warm-up
                lean.step(list(range(t)))
                lean.rewind(t)
            start = time.perf_counter()
            for _ in range(repeats):
                lean.step(list(range(t)))
                lean.rewind(t)
            row.append(1000 * (time.perf_counter() - start) / repeats)
        start = time.perf_counter()
        for _ in range(3):
            lean.reset()
            lean.step(prompt, last_only=True)
        prefill = 1000 * (time.perf_counter() - start) / 3
        results[name] = {"ms_per_call": dict(zip(sizes, row)), "prefill_ms": prefill}
        print(f"{name:<38}" + "".join(f"{ms:>8.1f}" for ms in row) + f"{prefill:>9.1f}")
    return results


def generate_runner(model, tokenizer, n, **kwargs):
    @torch.inference_mode()
    def run(prompt):
        ids = chat_input_ids(tokenizer, prompt)
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, **kwargs)
        return out[0, ids.size(1):].tolist()

    return run


def lean_runner(model, tokenizer, n, first_token_times=None):
    eos = eos_ids(model, tokenizer)

    def run(prompt):
        start = time.perf_counter()
        out = []
        for token in stream_tokens(model, chat_input_ids(tokenizer, prompt), n, eos):
            if not out and first_token_times is not None:
                first_token_times.append(time.perf_counter() - start)
            out.append(token)
        return out

    return run


def token_runner(tokens, tokenizer, eos, n, first_token_times=None, stats=None):
    """A runner for a function (prompt ids, n, eos) -> iterator of token ids; `stats` (a dict to fill)
    collects FastDecoder's token and target-call counts over all prompts."""

    def run(prompt):
        start = time.perf_counter()
        out = []
        for token in tokens(chat_input_ids(tokenizer, prompt)[0].tolist(), n, eos):
            if not out and first_token_times is not None:
                first_token_times.append(time.perf_counter() - start)
            out.append(token)
        return out

    return run


def llamacpp_runner(tokenizer, n, threads):
    """Greedy decoding of SmolLM2's own GGUF by llama.cpp, fed the same prompt ids (its vocabulary is the
    tokenizer's); None when llama-cpp-python is not installed."""
    try:
        from llama_cpp import Llama
    except ImportError:
        return None
    from shared.models import smollm2_gguf_path

    # n_batch=1: a native build of llama-cpp-python 0.3.36 segfaults in ggml's AMX matrix product on this
    # machine's CPU whenever a batch holds more than one token (month2_llm_core/RESULTS.md, known limits).
    llm = Llama(model_path=str(smollm2_gguf_path()), n_ctx=2048, n_threads=threads, n_batch=1, verbose=False)

    def run(prompt):
        llm.reset()
        out = []
        for token in llm.generate(chat_input_ids(tokenizer, prompt)[0].tolist(), top_k=1, top_p=1.0, temp=0.0,
                                  repeat_penalty=1.0, reset=True):
            out.append(token)
            if token == llm.token_eos() or len(out) == n:
                break
        return out

    return run


def streamer_runner(model, tokenizer, n, first_token_times):
    """generate + TextIteratorStreamer; returns the generated ids (captured from generate's output)."""
    from transformers import TextIteratorStreamer

    def run(prompt):
        ids = chat_input_ids(tokenizer, prompt)
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        result = {}

        def work():
            with torch.inference_mode():
                result["out"] = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n,
                                               do_sample=False, pad_token_id=tokenizer.pad_token_id, streamer=streamer)

        start = time.perf_counter()
        thread = threading.Thread(target=work)
        thread.start()
        for i, _ in enumerate(streamer):
            if i == 0:
                first_token_times.append(time.perf_counter() - start)
        thread.join()
        return result["out"][0, ids.size(1):].tolist()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, DecodeBenchConfig)
    try:
        args = config_from_args(DecodeBenchConfig, parser.parse_args())
    except UserError as err:
        parser.error(str(err))
    sections = set(args.sections.split(","))
    set_threads(args.threads)
    prompts = FIXED_PROMPTS[: args.prompts]
    n = args.max_new_tokens

    fp32, tok = load_chat_model(progress=False)
    fast = optimize_for_cpu(copy.deepcopy(fp32))
    report = {"cpu": cpu_model_name(), "torch": torch.__version__, "threads": args.threads, "max_new_tokens": n}
    if "steps" in sections:
        report["steps"] = step_costs(fp32, tok)
    if "micro" in sections:
        micro()
    if "profile" in sections:
        profile_step({"fp32": fp32, "fp16 modules": fast}, tok)
    if "paths" in sections:
        report.update(compare_paths(fp32, fast, tok, prompts, n))
    if "experiments" in sections:
        draft = int8_weight_model(copy.deepcopy(fp32))
        runners = {"fp32 generate": generate_runner(fp32, tok, n),
                   "fp16 modules, lean loop": lean_runner(fast, tok, n),
                   "int8 weights x bf16, lean loop": lean_runner(draft, tok, n),
                   "fp16 modules, generate, prompt lookup": generate_runner(fast, tok, n, prompt_lookup_num_tokens=5),
                   "fp16 modules, generate, int8 draft": generate_runner(fast, tok, n, assistant_model=draft)}
        report["experiments"] = table(time_round_robin(runners, prompts), len(prompts))
    if "kv" in sections:
        # KV cache on/off: without the cache every step re-reads the whole sequence.
        short = prompts[:2]
        kv = time_round_robin({"cache on": generate_runner(fp32, tok, 24),
                               "cache off": generate_runner(fp32, tok, 24, use_cache=False)}, short)
        kv_ratio = kv["cache on"].tokens_per_s / kv["cache off"].tokens_per_s
        kv_same = sum(a == b for a, b in zip(kv["cache on"].outputs, kv["cache off"].outputs))
        print(f"\nKV cache on vs off ({len(short)} prompts x 24 tokens): {kv['cache on'].tokens_per_s:.1f} vs "
              f"{kv['cache off'].tokens_per_s:.1f} tok/s -> {kv_ratio:.2f}x with the cache; "
              f"same tokens {kv_same}/{len(short)}")
        report["kv_cache_ratio"] = kv_ratio
    if "batch" in sections:
        # Batching: one left-padded call for all prompts against one call per prompt.
        base = time_round_robin({"one by one": generate_runner(fp32, tok, n)}, prompts)["one by one"]
        start = time.perf_counter()
        batched = generate_batch(fp32, tok, prompts, n)
        batch_seconds = time.perf_counter() - start
        singles = [tok.decode(o, skip_special_tokens=True) for o in base.outputs]
        batch_same = sum(a == b for a, b in zip(batched, singles))
        # Useful tokens: what the answers need; padded rows keep computing after their eos.
        print(f"batched generate ({len(prompts)} prompts, left padding): {base.tokens / batch_seconds:.1f} useful "
              f"tok/s -> {base.seconds / batch_seconds:.2f}x one-by-one generate; same answers "
              f"{batch_same}/{len(prompts)}")
        report.update({"batch_ratio": base.seconds / batch_seconds, "batch_same": batch_same})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"[decode] wrote {out}")


def table(timings, n_prompts):
    base = timings["fp32 generate"]
    rows = []
    print(f"\n{'path':<38} {'tok/s':>7} {'vs fp32 generate':>17} {'same tokens':>12}")
    for name, t in timings.items():
        same = sum(a == b for a, b in zip(t.outputs, base.outputs))
        ratio = t.tokens_per_s / base.tokens_per_s
        rows.append({"path": name, "tokens_per_s": t.tokens_per_s, "ratio": ratio, "same": same, "n": n_prompts})
        print(f"{name:<38} {t.tokens_per_s:>7.1f} {ratio:>16.2f}x {same:>8}/{n_prompts}")
    return rows


def compare_paths(fp32, fast, tok, prompts, n):
    # Loaded in bf16, not fp32.to(bfloat16): .to() would also round RoPE's inv_freq buffer.
    bf16, _ = load_chat_model(dtype=torch.bfloat16, progress=False)
    ttft = {"fp32 TextIteratorStreamer": [], "speculative": []}
    eos = eos_ids(fp32, tok)
    lean32 = LeanLlama(fp32, transposed_linear)
    fast_decoder = FastDecoder(fp32)
    draft = LeanLlama(fp32, int4_bf16_linear, head=int4_bf16_linear(fp32.lm_head.weight))
    spec_stats = {"tokens": 0, "target_calls": 0}

    def speculative(ids, n, eos):
        yield from fast_decoder.tokens(ids, n, eos)
        spec_stats["tokens"] += fast_decoder.stats["tokens"]
        spec_stats["target_calls"] += fast_decoder.stats["target_calls"]

    runners = {
        "fp32 generate": generate_runner(fp32, tok, n),
        "fp32 generate, static cache": generate_runner(fp32, tok, n, cache_implementation="static"),
        "fp32 lean loop": lean_runner(fp32, tok, n),
        "fp32 TextIteratorStreamer": streamer_runner(fp32, tok, n, ttft["fp32 TextIteratorStreamer"]),
        "bf16 generate": generate_runner(bf16, tok, n),
        "fp16 modules, generate": generate_runner(fast, tok, n),
        "fp16 modules, lean loop": lean_runner(fast, tok, n),
        "LeanLlama fp32": token_runner(lambda *a: lean_tokens(lean32, *a), tok, eos, n),
        "LeanLlama fp16": token_runner(lambda *a: lean_tokens(fast_decoder.target, *a), tok, eos, n),
        "4-bit draft alone": token_runner(lambda *a: lean_tokens(draft, *a), tok, eos, n),
        "speculative": token_runner(speculative, tok, eos, n, ttft["speculative"]),
    }
    llamacpp = llamacpp_runner(tok, n, torch.get_num_threads())
    if llamacpp is not None:
        runners["llama.cpp (Q4_1 GGUF)"] = llamacpp
    print(f"[decode] {len(prompts)} prompts x up to {n} tokens, paths taking turns", flush=True)
    timings = time_round_robin(runners, prompts)
    rows = table(timings, len(prompts))
    base = timings["fp32 generate"]
    for times in ttft.values():
        del times[0]  # the warm-up call
    for name, times in ttft.items():
        print(f"time to first token, {name}: {1000 * sum(times) / len(times):.0f} ms (mean); "
              f"plain generate shows nothing until the whole answer: {1000 * base.seconds / len(prompts):.0f} ms")
    per_call = spec_stats["tokens"] / max(1, spec_stats["target_calls"])
    print(f"speculative: {per_call:.2f} tokens per fp16 call (after the prompt), lookahead {fast_decoder.lookahead}")
    faster = max(("LeanLlama fp16", "speculative"), key=lambda name: timings[name].tokens_per_s)
    print(f"faster greedy path here ({cpu_model_name()}, {torch.get_num_threads()} thread(s)): {faster}")
    return {"rows": rows, "ttft_ms": {k: 1000 * sum(v) / len(v) for k, v in ttft.items()},
            "speculative_tokens_per_target_call": per_call}


if __name__ == "__main__":
    main()
