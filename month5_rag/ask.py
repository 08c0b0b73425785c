"""Answer one question from a collection: the answer with citations, then the quoted evidence.

    python -m month5_rag ask "What is the hotel limit in Zurich?" --collection team-a
    python -m month5_rag ask "..." --generate false          # extractive: the evidence is the answer (fast)
    python -m month5_rag ask "..." --json true               # the whole Answer as JSON (month 6's shape)

"Not found in the documents." when the evidence is too weak (see --threshold).
"""

from __future__ import annotations

import argparse
import json
import sys

from month5_rag.rag import AnswerConfig, Rag, RagConfig
from shared.config import _parse_bool, add_config_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("question", help="the question, in quotes")
    add_config_arguments(parser, RagConfig)
    add_config_arguments(parser, AnswerConfig)
    parser.add_argument("--json", type=_parse_bool, default=False, metavar="BOOL", help="print the Answer as JSON")


def main(args: argparse.Namespace) -> None:
    from shared.runtime import set_threads

    set_threads()
    rag_cfg, answer_cfg = config_from_args(RagConfig, args), config_from_args(AnswerConfig, args)
    rag = Rag(rag_cfg)
    collection = rag._check(rag_cfg.collection)
    rag.embedder(collection)
    answerer = rag.answerer(answer_cfg)
    files = [rag.resolve_file(answer_cfg.file, collection)] if answer_cfg.file else None
    answer = answerer.prepare(args.question, collection, files)
    if args.json:
        for _ in answerer.stream(answer):
            pass
        print(json.dumps(answer.as_dict(), indent=1))
        return
    for piece in answerer.stream(answer):
        sys.stdout.write(piece)
        sys.stdout.flush()
    print()
    for e in answer.evidence:
        print(f'  > "{e.sentence}" [{e.locator}, characters {e.start}-{e.end}]')
    if not answer.found:
        print(f"  ({answer.reason})")
