"""python -m month6_system --help"""

from shared.cli import not_built_yet

if __name__ == "__main__":
    not_built_yet("month6_system")
