"""python -m month4_moe --help"""

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m month4_moe",
        description="Month 4: Mixture of Experts - four specialists (Code / Math / Text / Chat). Not built yet: see month4_moe/README.md for what it will contain.",
    )
    parser.parse_args(argv)
    parser.print_help()


if __name__ == "__main__":
    main()
