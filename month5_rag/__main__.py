"""python -m month5_rag {ingest,ask,chat,list,delete,eval} --help"""

from __future__ import annotations

from shared.cli import Command, run_subcommands

COMMANDS = {
    "ingest": Command("month5_rag.ingest", "read, chunk and embed files or folders into a collection (resumable)"),
    "ask": Command("month5_rag.ask", "answer one question from a collection, with citations and evidence"),
    "chat": Command("month5_rag.chat", "chat with a collection: streamed answers, history, citations"),
    "list": Command("month5_rag.listing", "collections, or the files of one with their status and chunks"),
    "delete": Command("month5_rag.delete", "remove a file's chunks from a collection"),
    "eval": Command("month5_rag.evaluate", "retrieval and answer quality on the generated and hand-written sets"),
}


def main(argv: list[str] | None = None) -> None:
    run_subcommands("python -m month5_rag",
                    "Month 5: retrieval and RAG - chat with internal PDF and Word documents, with citations.",
                    COMMANDS, argv)


if __name__ == "__main__":
    main()
