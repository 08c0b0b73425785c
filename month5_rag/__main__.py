"""python -m month5_rag --help"""

from shared.cli import not_built_yet

if __name__ == "__main__":
    not_built_yet("month5_rag")
