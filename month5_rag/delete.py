"""Remove a file's chunks from a collection (by path, or by name when the name is unique).

    python -m month5_rag delete handbook.pdf --collection team-a
"""

from __future__ import annotations

import argparse

from month5_rag.rag import Rag, RagConfig
from shared.config import add_config_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the file's path or name, as `list` shows it")
    add_config_arguments(parser, RagConfig)


def main(args: argparse.Namespace) -> None:
    cfg = config_from_args(RagConfig, args)
    rag = Rag(cfg)
    collection = rag._check(cfg.collection)
    path = rag.resolve_file(args.file, collection)
    before = rag.store.count(collection)
    rag.delete(path, collection)
    print(f"deleted {path} from {collection}: {before - rag.store.count(collection)} chunks removed")
