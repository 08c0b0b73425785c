"""The product demo (`make demo`): the assistant on embedded defaults, the company documents ingested, and a
scripted conversation through the real HTTP API with the official openai client, each answer with its trace.

    python -m month6_system demo                        # a free loopback port; ends after the conversation
    python -m month6_system demo --keep-serving true    # then keeps serving until Ctrl-C
    python -m month6_system demo --port 8000 --data-dir runs/month6/demo

It shows each capability once: a math question routed to the Math expert and answered with the calculator,
a policy question answered from the documents with a citation, a fact told in one conversation and recalled
in another, a client-defined tool (the client runs it and sends the result back), a plain turn with no tool.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from month6_system.settings import load_settings

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@dataclass
class Step:
    title: str
    text: str
    conversation: str = "demo-1"
    tools: list[dict[str, Any]] = field(default_factory=list)


STEPS = [
    Step("math: routed to the Math expert, answered with the calculator", "What is 15 percent of 240?"),
    Step("documents: answered from the travel policy, with a citation", "What is the hotel limit in Zurich?"),
    Step("memory, part 1: a fact told in one conversation", "My badge number is K7Q2X."),
    Step("memory, part 2: recalled in another conversation", "Do you remember my badge number?",
         conversation="demo-2"),
    Step("a client-defined tool: the client runs get_weather", "What is the weather in Paris?",
         tools=[WEATHER_TOOL]),
    Step("a plain turn, no tool", "Write a haiku about autumn."),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=Path("runs/month6/demo"),
                        help="the demo's data folder: store, transcript (default: runs/month6/demo)")
    parser.add_argument("--port", type=int, default=0, help="listen port on 127.0.0.1 (default: 0, a free port)")
    parser.add_argument("--keep-serving", type=lambda s: s.lower() in ("1", "true", "yes"), default=False,
                        help="keep the server running after the conversation, until Ctrl-C (default: false)")


def describe(trace: dict[str, Any]) -> str:
    """One line of a response's trace: expert, tools with latency, memory path, citations, seconds per stage."""
    expert = trace.get("expert") or {}
    parts = [f"expert {expert.get('name')} (p={expert.get('probability')})"]
    if trace.get("answered_by", expert.get("name")) != expert.get("name"):
        parts[0] += f", answered by {trace['answered_by']}"
    for step in trace.get("tool_steps", []):
        args = json.dumps(step["arguments"], ensure_ascii=False)
        parts.append(f"{step['side']} tool {step['tool']}({args}) {step['latency_s'] * 1000:.0f} ms")
    if not trace.get("tool_steps"):
        parts.append("no tool")
    if "memory" in trace:
        memory = trace["memory"]
        confidence = memory.get("reader_confidence")
        parts.append(f"memory path: {memory['path']}" + (f" (reader confidence {confidence:.2f})"
                                                         if confidence is not None else "")
                     + (", the reader says it was never told" if memory.get("not_told") else ""))
    if trace.get("citations"):
        parts.append("citations " + ", ".join(trace["citations"]))
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in trace.get("stages_s", {}).items())
    return "; ".join(parts) + f" | {stages}"


def run_conversation(client, model: str, steps: list[Step] = STEPS, say=print) -> list[dict[str, Any]]:
    """Send `steps` through `client` (an openai.OpenAI); returns each step's answer and trace."""
    results = []
    for number, step in enumerate(steps, 1):
        say(f"\n[{number}/{len(steps)}] {step.title}\n  you:       {step.text}")
        messages: list[dict[str, Any]] = [{"role": "user", "content": step.text}]
        extra = {"tools": step.tools} if step.tools else {}
        start = time.perf_counter()
        response = client.chat.completions.create(model=model, messages=messages,
                                                  metadata={"conversation_id": step.conversation}, **extra)
        message, trace = response.choices[0].message, response.to_dict().get("trace", {})
        traces = [trace]
        if message.tool_calls:  # the client's tool: run it here, send the result back
            call = message.tool_calls[0]
            say(f"  assistant: calls the client's {call.function.name}({call.function.arguments})")
            city = json.loads(call.function.arguments).get("city", "?")
            result = json.dumps({"city": city, "forecast": "light rain", "celsius": 7})
            say(f"  client:    ran it -> {result}")
            messages += [message.to_dict(), {"role": "tool", "tool_call_id": call.id, "content": result}]
            response = client.chat.completions.create(model=model, messages=messages,
                                                      metadata={"conversation_id": step.conversation}, **extra)
            message = response.choices[0].message
            traces.append(response.to_dict().get("trace", {}))
        say(f"  assistant: {message.content}  ({time.perf_counter() - start:.1f} s)")
        for trace in traces:
            say(f"  trace:     {describe(trace)}")
        results.append({"step": step.title, "answer": message.content, "traces": traces})
    return results


def main(args: argparse.Namespace) -> None:
    from openai import OpenAI

    from month6_system.agent import build_assistant
    from month6_system.app import create_app
    from month6_system.company_docs import write_company_docs
    from month6_system.serve import start_in_thread

    settings = load_settings(data_dir=args.data_dir, port=args.port)
    start = time.perf_counter()
    print("[demo] loading the assistant: SmolLM2 + 4 expert adapters + the tool-call adapter, the router ...",
          flush=True)
    assistant = build_assistant(settings, progress=True)
    print(f"[demo] loaded in {time.perf_counter() - start:.1f} s; ingesting the company documents", flush=True)
    forgotten = assistant.storage.forget("default")  # each demo starts with no remembered conversation
    if forgotten:
        print(f"[demo] forgot the {forgotten} messages of an earlier demo in {settings.data_dir}", flush=True)
    report = assistant.rag.ingest(write_company_docs(Path(settings.data_dir) / "company_docs"), collection="default")
    print(report.summary(), flush=True)
    server = start_in_thread(create_app(settings, assistant), settings.host, settings.port)
    print(f"[demo] the assistant listens at {server.url}/v1 (OpenAI-compatible; traces at {server.url}/v1/traces/ID)",
          flush=True)
    try:
        client = OpenAI(base_url=server.url + "/v1", api_key="demo", max_retries=0, timeout=300)
        run_conversation(client, settings.model_name)
        print(f"\n[demo] done in {time.perf_counter() - start:.0f} s. Keep an assistant running with "
              f"`python -m month6_system serve --data-dir {settings.data_dir}`.", flush=True)
        if args.keep_serving:
            print(f"[demo] serving at {server.url}/v1; Ctrl-C stops", flush=True)
            while server.thread.is_alive():
                server.thread.join(timeout=0.5)
    except KeyboardInterrupt:
        print("\n[demo] stopped", flush=True)
    finally:
        server.stop()
