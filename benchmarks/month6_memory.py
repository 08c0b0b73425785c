"""Month 6 benchmark: memory recall against conversation length, on the path the assistant uses today (the
transcript in SQLite, searched by `recall_memory`; month 3's streaming reader does not read sentences yet, #11).

For each history length (tokens of user messages, counted with SmolLM2's tokenizer), the transcript holds
stretches of Python-documentation prose as user messages with five facts ("My badge number is K7Q2X.") at
random places (for the shortest history, only the first fact). Each fact is then asked the way the tool-call
adapter writes it (`recall_memory({"query": "my badge number"})`). Reported: the share of facts whose message is
the first result and among the three the tool returns, the time of one recall, and the text the transcript holds
(it grows with the history; month 3's reader would hold a constant 23,552-byte state).

    OMP_NUM_THREADS=1 python benchmarks/month6_memory.py
    OMP_NUM_THREADS=1 python benchmarks/month6_memory.py --lengths 10,1000,100000
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

from month3_mamba.prose import filler  # noqa: E402
from month6_system.storage import SqlStorage  # noqa: E402
from month6_system.tools import recall_memory_tool  # noqa: E402
from shared.models import chat_model_path  # noqa: E402

FACTS = [("badge number", "K7Q2X"), ("locker code", "4471"), ("manager's name", "Dana Ortiz"),
         ("project code", "ORION-5"), ("desk number", "C-17")]
MESSAGE_BYTES = 300  # one filler message (~60-70 tokens)


def build(storage: SqlStorage, key: str, tokens: int, tokenizer, rng: random.Random) -> tuple[int, list]:
    """A transcript of about `tokens` tokens; returns (tokens counted, the facts planted)."""
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
    return counted, facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="10,1000,100000,1000000", help="history lengths in tokens")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_month6" / "memory.json")
    args = parser.parse_args()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(chat_model_path(progress=False))
    storage = SqlStorage(Path(tempfile.mkdtemp(prefix="bench-month6-memory-")) / "assistant.sqlite")
    rows = []
    for i, length in enumerate(int(x) for x in args.lengths.split(",")):
        key = f"user-{i}"
        start = time.perf_counter()
        counted, facts = build(storage, key, length, tokenizer, random.Random(args.seed + i))
        build_s = time.perf_counter() - start
        recall = recall_memory_tool(None, storage, key)
        first = top3 = 0
        seconds = []
        for name, value in facts:
            t0 = time.perf_counter()
            result = recall(f"my {name}")
            seconds.append(time.perf_counter() - t0)
            found = [value in text for text in result["answer"]]
            first += bool(found) and found[0]
            top3 += any(found)
        stored = storage.messages(key)
        rows.append({"tokens": counted, "messages": len(stored), "bytes": sum(len(m.content.encode()) for m in stored),
                     "facts": len(facts),
                     "first": first / len(facts), "top3": top3 / len(facts),
                     "recall_ms": statistics.median(seconds) * 1000, "build_s": build_s})
    print(f"transcript search (SqlStorage.search_messages, word overlap), {time.strftime('%Y-%m-%d')}")
    print("| history (tokens) | messages | text stored (bytes) | facts | first result | among 3 returned | "
          "one recall (ms, median) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['tokens']:,} | {r['messages']:,} | {r['bytes']:,} | {r['facts']} | {r['first']:.0%} | "
              f"{r['top3']:.0%} | {r['recall_ms']:.1f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")
    print(args.out)


if __name__ == "__main__":
    main()
