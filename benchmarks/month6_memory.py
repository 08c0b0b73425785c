"""Month 6 benchmark: memory recall against conversation length, on both of the assistant's paths: month 3's
streaming reader (one constant-size state per key, `long_memory.KeyedMemory`) and the transcript search it falls
back to when the reader's confidence is below `--threshold` (`tools.recall_memory_tool`).

For each history length (tokens of user messages, counted with SmolLM2's tokenizer), the history holds
stretches of Python-documentation prose as user messages with five facts ("My badge number is K7Q2X.") at
random places (for the shortest history, only the first fact); each message goes to the transcript and through
the reader, as the agent stores it. Each fact is then asked the way the tool-call adapter writes it
(`recall_memory({"query": "my badge number"})`), and so are three keys never stated (`my employee number`: the
right answer is that nothing was said). Reported per length: the reader's exact answers and mean
confidence, the transcript search's first result and top 3, which path the tool took and whether its answer
holds the value, the time of one recall, and what each path keeps (the transcript grows with the history; the
reader's state does not), and for the untold keys how often the reader said it was never told, how often it was
sure of a value, and how often the tool answered from it.

    OMP_NUM_THREADS=1 python benchmarks/month6_memory.py
    OMP_NUM_THREADS=1 python benchmarks/month6_memory.py --lengths 10,1000,100000 --reader none
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from month3_mamba.families import MEMORY_CKPT  # noqa: E402
from month3_mamba.prose import filler  # noqa: E402
from month6_system.long_memory import KeyedMemory  # noqa: E402
from month6_system.settings import MEMORY_CONFIDENCE  # noqa: E402
from month6_system.storage import SqlStorage  # noqa: E402
from month6_system.tools import recall_memory_tool  # noqa: E402
from shared.models import chat_model_path  # noqa: E402

FACTS = [("badge number", "K7Q2X"), ("locker code", "4471"), ("manager's name", "Dana Ortiz"),
         ("project code", "ORION-5"), ("desk number", "C-17")]
UNTOLD = ["employee number", "locker number", "passport number"]  # never stated: keys like the told ones
MESSAGE_BYTES = 300  # one filler message (~60-70 tokens)


def build(storage: SqlStorage, key: str, tokens: int, tokenizer, rng: random.Random,
          memory: KeyedMemory | None) -> tuple[int, list]:
    """A transcript (and the reader's state) of about `tokens` tokens; returns (tokens counted, the facts planted)."""
    facts = FACTS[:1] if tokens < 100 else FACTS
    statements = [f"My {k} is {v}." for k, v in facts]
    counted = sum(len(tokenizer.encode(s)) for s in statements)
    messages: list[str] = []
    while counted < tokens - 8:
        text = filler(rng, MESSAGE_BYTES)
        counted += len(tokenizer.encode(text))
        messages.append(text)
    for statement in statements:
        messages.insert(rng.randrange(len(messages) + 1), statement)
    for text in messages:
        storage.append_message(key, "history", "user", text)
        if memory is not None:
            memory.write(key, text)
    return counted, facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="10,1000,100000,1000000", help="history lengths in tokens")
    parser.add_argument("--reader", default=str(MEMORY_CKPT), help="month 3 memory checkpoint (none: the "
                                                                   "transcript alone)")
    parser.add_argument("--threshold", type=float, default=MEMORY_CONFIDENCE, help="the reader's confidence below "
                                                                                   "which the transcript answers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_month6" / "memory.json")
    args = parser.parse_args()
    import torch
    from transformers import AutoTokenizer

    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(chat_model_path(progress=False))
    storage = SqlStorage(Path(tempfile.mkdtemp(prefix="bench-month6-memory-")) / "assistant.sqlite")
    memory = KeyedMemory.from_checkpoint(storage, args.reader) if args.reader != "none" else None
    rows = []
    for i, length in enumerate(int(x) for x in args.lengths.split(",")):
        key = f"user-{i}"
        start = time.perf_counter()
        counted, facts = build(storage, key, length, tokenizer, random.Random(args.seed + i), memory)
        build_s = time.perf_counter() - start
        tool = recall_memory_tool(memory.for_key(key) if memory else None, storage, key, args.threshold)
        counts = dict.fromkeys(("first", "top3", "reader", "via_reader", "answered"), 0)
        seconds, confidences = [], []
        for name, value in facts:
            query = f"my {name}"
            found = [value in m.content for m in storage.search_messages(key, query, limit=3)]
            counts["first"] += bool(found) and found[0]
            counts["top3"] += any(found)
            if memory is not None:
                recalled = memory.recall(key, query)
                counts["reader"] += recalled.answer == value
                confidences.append(recalled.confidence)
            t0 = time.perf_counter()
            result = tool(query)
            seconds.append(time.perf_counter() - t0)
            counts["via_reader"] += result["path"] == "memory"
            answers = [result["answer"]] if result["path"] == "memory" else result["answer"][:1]
            counts["answered"] += any(value in text for text in answers)
        sure = trusted = not_told = 0
        for name in UNTOLD:  # the right answer is "not known": a memory-path answer is a wrong one
            result = tool(f"my {name}")
            sure += result["path"] == "memory" or "memory_unconfirmed" in result
            trusted += result["path"] == "memory"
            not_told += "memory_not_told" in result
        stored = storage.messages(key)
        state = storage.get_memory_state(key)
        rows.append({"tokens": counted, "messages": len(stored), "bytes": sum(len(m.content.encode()) for m in stored),
                     "state_bytes": len(state) if state else None, "facts": len(facts),
                     **{k: v / len(facts) for k, v in counts.items()},
                     "confidence": statistics.mean(confidences) if confidences else None,
                     "recall_ms": statistics.median(seconds) * 1000, "build_s": build_s,
                     "untold_sure": sure / len(UNTOLD), "untold_trusted": trusted / len(UNTOLD),
                     "untold_not_told": not_told / len(UNTOLD)})
    print(f"memory recall: month 3's reader ({args.reader}), threshold {args.threshold}, falling back to the "
          f"transcript search (word overlap); {time.strftime('%Y-%m-%d')}")
    print("| history (tokens) | messages | transcript (bytes) | reader state (bytes) | facts | reader exact | "
          "reader confidence | transcript first / top 3 | answered by the reader | tool's answer right | "
          "one recall (ms) | untold keys: reader says not told / sure of a value / answered by the reader |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        reader = (f"{r['reader']:.0%}", f"{r['confidence']:.2f}", f"{r['state_bytes']:,}") if memory else ("-",) * 3
        print(f"| {r['tokens']:,} | {r['messages']:,} | {r['bytes']:,} | {reader[2]} | {r['facts']} | {reader[0]} | "
              f"{reader[1]} | {r['first']:.0%} / {r['top3']:.0%} | {r['via_reader']:.0%} | {r['answered']:.0%} | "
              f"{r['recall_ms']:.1f} | {r['untold_not_told']:.0%} / {r['untold_sure']:.0%} / "
              f"{r['untold_trusted']:.0%} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")
    print(args.out)


if __name__ == "__main__":
    main()
