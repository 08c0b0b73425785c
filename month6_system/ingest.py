"""Add documents to the assistant's store (month 5's ingestion: changed files re-read, per-file errors).

    python -m month6_system ingest docs/ handbook.pdf          # into the default key's collection
    python -m month6_system ingest docs/ --key team-a          # the documents of API key scope team-a
    python -m month6_system ingest --company-docs true         # the demo's bundled company documents

The running server sees them on its next request (the same store under `--data-dir`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from month6_system.settings import Settings, load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders (PDF, DOCX, Markdown, HTML, text)")
    parser.add_argument("--key", default="default", help="whose documents these are (the collection; default: default)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"the assistant's data folder (default: {Settings.model_fields['data_dir'].default})")
    parser.add_argument("--company-docs", type=lambda s: s.lower() in ("1", "true", "yes"), default=False,
                        help="also write and ingest the demo's company documents (default: false)")


def ingest(settings: Settings, paths: list[Path], key: str = "default", progress: bool = True):
    """month 5's IngestReport for `paths` in `key`'s collection of the assistant's store."""
    from month5_rag.rag import Rag, RagConfig

    rag = Rag(RagConfig(store="chroma", store_dir=str(Path(settings.data_dir) / "store"), progress=progress))
    return rag.ingest(paths, collection=key)


def main(args: argparse.Namespace) -> None:
    from month6_system.company_docs import write_company_docs
    from shared.errors import UserError

    settings = load_settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    paths = list(args.paths)
    if args.company_docs:
        paths += write_company_docs(Path(settings.data_dir) / "company_docs")
    if not paths:
        raise UserError("nothing to ingest: give files or folders, or --company-docs true")
    report = ingest(settings, paths, args.key)
    print(report.summary())
