"""python -m month6_system --help"""

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m month6_system",
        description="Month 6: the Enterprise Hybrid Assistant. Not built yet: see month6_system/README.md for what it will contain.",
    )
    parser.parse_args(argv)
    parser.print_help()


if __name__ == "__main__":
    main()
