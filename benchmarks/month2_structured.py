"""Month 2 benchmark: JSON asked for in the prompt only, against JSON under the schema's grammar (structured.py).

The same SmolLM2, prompts and schemas, greedy, both ways in one process taking turns: how many answers parse,
how many validate against their schema, and the cost of the grammar (its mask per token, and tokens/s).
The system prompt states the schema in both runs, so the only difference is the mask.

    OMP_NUM_THREADS=1 python benchmarks/month2_structured.py             # about 2 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import time

import jsonschema
import torch

from month2_llm_core.inference import chat_input_ids, eos_ids, stream_tokens
from month2_llm_core.structured import ANY_OBJECT, JsonConstraint
from shared.models import load_chat_model

PERSON = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}
TRIP = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                                         "sights": {"type": "array", "items": {"type": "string"}, "maxItems": 3}},
        "required": ["city", "days", "sights"], "additionalProperties": False}
TICKET = {"type": "object", "properties": {"priority": {"enum": ["low", "medium", "high"]},
                                           "team": {"type": "string"}, "summary": {"type": "string"}},
          "required": ["priority", "team", "summary"], "additionalProperties": False}
ANSWER = {"type": "object", "properties": {"answer": {"type": "number"}}, "required": ["answer"],
          "additionalProperties": False}
CASES = [
    ("Extract the person: Maria Lopez is 34 years old and lives in Madrid.", PERSON),
    ("Tom Berg, aged 51, joined the sales team.", PERSON),
    ("Plan a trip to Kyoto.", TRIP),
    ("Plan a weekend in Lisbon.", TRIP),
    ("The printer on floor 3 is on fire. File a ticket.", TICKET),
    ("My password reset email never arrived. File a ticket.", TICKET),
    ("What is 12 times 7?", ANSWER),
    ("How many minutes are there in 3 hours?", ANSWER),
    ("Give me the capital of France as a JSON object.", ANY_OBJECT),
    ("Describe a cat as JSON.", ANY_OBJECT),
]


def run(model, tokenizer, text: str, schema: dict, constrained: bool, max_new_tokens: int) -> dict:
    system = ("You are a helpful assistant. Answer with one JSON object following this JSON schema: "
              f"{json.dumps(schema)}")

    ids = chat_input_ids(tokenizer, text, system=system)
    constraint = JsonConstraint(tokenizer, schema) if constrained else None
    mask_seconds = 0.0
    if constraint is not None:  # time the mask on its own: the wrapper adds its calls' time
        inner = constraint.mask_

        def timed(logits):
            nonlocal mask_seconds
            start = time.perf_counter()
            inner(logits)
            mask_seconds += time.perf_counter() - start

        constraint.mask_ = timed
    start = time.perf_counter()
    tokens = list(stream_tokens(model, ids, max_new_tokens, eos_ids(model, tokenizer), constraint=constraint))
    seconds = time.perf_counter() - start
    out = tokenizer.decode(tokens, skip_special_tokens=True)
    try:
        value, parses = json.loads(out), True
    except json.JSONDecodeError:
        value, parses = None, False
    valid = parses and jsonschema.Draft202012Validator(schema).is_valid(value)
    return {"text": out, "parses": parses, "valid": valid, "tokens": len(tokens), "seconds": seconds,
            "mask_seconds": mask_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, tokenizer = load_chat_model(progress=False)
    rows = {False: [], True: []}
    for text, schema in CASES:
        for constrained in (False, True):
            row = run(model, tokenizer, text, schema, constrained, args.max_new_tokens)
            rows[constrained].append(row)
            print(f"{'grammar' if constrained else 'prompt '} {row['valid']!s:5} {row['text'][:90]!r}")
    print(f"\n{len(CASES)} requests, greedy, up to {args.max_new_tokens} new tokens, 1 thread")
    print("| JSON asked for | parses | validates | tokens/s | mask ms/token |\n|---|---|---|---|---|")
    for constrained, name in ((False, "in the prompt only"), (True, "+ the schema's grammar (llguidance)")):
        r = rows[constrained]
        tokens = sum(x["tokens"] for x in r)
        mask = f"{1000 * sum(x['mask_seconds'] for x in r) / tokens:.2f}" if constrained else "-"
        print(f"| {name} | {sum(x['parses'] for x in r)}/{len(r)} | {sum(x['valid'] for x in r)}/{len(r)} | "
              f"{tokens / sum(x['seconds'] for x in r):.1f} | {mask} |")


if __name__ == "__main__":
    main()
