"""Chat with a collection: each answer is streamed from the chat model, grounded in the evidence
retrieved for that question, with citations and the quoted evidence after it. History is kept (and
trimmed to the context window, month 2's rule) so follow-ups read naturally.

    python -m month5_rag chat --collection team-a
    echo "What is the hotel limit in Zurich?" | python -m month5_rag chat --generate false

Commands: /reset, /help, /quit.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from month5_rag.answer import Answerer
from month5_rag.rag import AnswerConfig, Rag, RagConfig
from shared.config import add_config_arguments, config_from_args

HELP = "commands: /reset (forget the conversation), /help, /quit (end of input works too)"


class RagChat:
    """History of (question, answer) turns; each turn retrieves afresh."""

    def __init__(self, answerer: Answerer, collection: str, context_window: int = 2048, history_turns: int = 4):
        self.answerer, self.collection = answerer, collection
        self.context_window, self.history_turns = context_window, history_turns
        self.history: list[dict] = []

    def reply(self, question: str):
        """Yields the answer's pieces; returns the Answer (StopIteration.value)."""
        from month2_llm_core.chat import trim_history

        answer = self.answerer.prepare(question, self.collection)
        history = self.history[-2 * self.history_turns:]
        backend = self.answerer.backend
        if backend is not None and answer.found:
            messages = self.answerer.messages(answer, history)
            kept, _ = trim_history(messages, backend.count_tokens, self.context_window - self.answerer.max_new_tokens)
            history = [m for m in kept if m["role"] != "system"][:-1]
        yield from self.answerer.stream(answer, history)
        self.history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.text}]
        return answer


def run_chat(chat: RagChat, stdin: TextIO, stdout: TextIO, show_prompt: bool = False) -> None:
    def say(text: str = "", end: str = "\n") -> None:
        stdout.write(text + end)
        stdout.flush()

    say(f"[collection {chat.collection}] {HELP}")
    while True:
        if show_prompt:
            say("you> ", end="")
        line = stdin.readline()
        if not line:
            break
        line = line.strip()
        if not line:
            continue
        if line == "/quit":
            break
        if line == "/reset":
            chat.history = []
            say("[conversation reset]")
            continue
        if line.startswith("/"):
            say(HELP)
            continue
        say("bot> ", end="")
        stream = chat.reply(line)
        while True:
            try:
                say(next(stream), end="")
            except StopIteration as stop:
                answer = stop.value
                break
        say()
        for e in answer.evidence:
            say(f'  > "{e.sentence}" [{e.locator}]')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, RagConfig)
    add_config_arguments(parser, AnswerConfig)


def main(args: argparse.Namespace) -> None:
    from shared.runtime import set_threads

    set_threads()
    rag_cfg, answer_cfg = config_from_args(RagConfig, args), config_from_args(AnswerConfig, args)
    rag = Rag(rag_cfg)
    collection = rag._check(rag_cfg.collection)
    rag.embedder(collection)
    run_chat(RagChat(rag.answerer(answer_cfg), collection), sys.stdin, sys.stdout, show_prompt=sys.stdin.isatty())
