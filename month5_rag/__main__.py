"""python -m month5_rag --help"""

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m month5_rag",
        description="Month 5: retrieval and RAG - chat with internal PDF and Word documents. Not built yet: see month5_rag/README.md for what it will contain.",
    )
    parser.parse_args(argv)
    parser.print_help()


if __name__ == "__main__":
    main()
