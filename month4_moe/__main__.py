"""python -m month4_moe --help"""

from shared.cli import not_built_yet

if __name__ == "__main__":
    not_built_yet("month4_moe")
