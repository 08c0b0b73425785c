"""List the collections of a store, or (--files true) the files of one: status, kind, pages, chunks, warnings.

    python -m month5_rag list
    python -m month5_rag list --collection team-a --files true
"""

from __future__ import annotations

import argparse

from month5_rag.rag import Rag, RagConfig
from shared.config import _parse_bool, add_config_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, RagConfig)
    parser.add_argument("--files", type=_parse_bool, default=False, metavar="BOOL",
                        help="list the files of --collection (default: false, list the collections)")


def main(args: argparse.Namespace) -> None:
    cfg = config_from_args(RagConfig, args)
    rag = Rag(cfg)
    if not args.files:
        collections = rag.collections()
        print(f"{len(collections)} collection(s) in {cfg.store} at {cfg.store_dir}")
        for name in collections:
            files = rag.files(name)
            print(f"  {name}: {len(files)} file(s), {rag.store.count(name)} chunks")
        return
    collection = rag._check(cfg.collection)
    files = rag.files(collection)
    print(f"collection {collection}: {len(files)} file(s), {rag.store.count(collection)} chunks in {cfg.store}")
    for f in files:
        pages = f"{f['pages']} pages" if f["pages"] else ""
        print(f"  {f['status']:<8} {f['kind'] or '?':<5} {pages:>10} {f['chunks']:>5} chunks  {f['path']}")
        for w in f["warnings"]:
            print(f"           warning: {w}")
