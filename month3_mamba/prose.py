"""Offline prose for the recall documents: corpora to train on, and corpora held out for evaluation.

Every corpus ships with Python or with the project's core dependencies, so it exists offline on
every machine that runs the project (tiny Shakespeare does not: it is downloaded).

| name | what | role |
| --- | --- | --- |
| `pydoc` | the Python documentation topics that `help()` shows (0.47 MB) | train (the first reader's only corpus) |
| `docstrings` | docstrings of the standard library (modules, classes, functions; no idlelib or tests): 1.6 MB | train |
| `words` | generated: words of `pydoc` and `docstrings` drawn at random, no grammar | train |
| `train-mix` | per document, one of the three above (weights 0.4 / 0.4 / 0.2) | train |
| `licenses` | license files of the core dependencies (torch, numpy, ...) and Python's: legal English | **held out** |
| `idle` | IDLE's manual (help.html, tags stripped) and its 25 years of NEWS and notes | held out (second set) |

All text is ASCII with the braces removed (a `{` marks a fact in the brace format).
"""

from __future__ import annotations

import ast
import hashlib
import html.parser
import random
from functools import cache, lru_cache
from importlib import metadata

from shared.corpora import CorpusUnavailable, stdlib_dir, stdlib_prose, stdlib_source_files

TRAIN_CORPORA = {"pydoc": 0.4, "docstrings": 0.4, "words": 0.2}  # train-mix: corpus -> weight
HELDOUT_CORPORA = ("licenses", "idle")
CORPORA = (*TRAIN_CORPORA, "train-mix", *HELDOUT_CORPORA)
CORE_DISTRIBUTIONS = ("torch", "numpy", "matplotlib", "tqdm", "psutil", "packaging")
LICENSE_NAMES = ("LICEN", "COPYING", "NOTICE")
IDLE_FILES = ("NEWS.txt", "NEWS2x.txt", "HISTORY.txt", "CREDITS.txt", "README.txt", "TODO.txt", "extend.txt")


def clean(text: str) -> str:
    return "".join(ch for ch in text if ch.isascii() and ch not in "{}")


def stdlib_docstrings() -> str:
    """Module, class and function docstrings of the standard library (its sources minus tests and idlelib)."""
    docs = []
    for path in stdlib_source_files():
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) > 40:
                    docs.append(doc)
    return "\n\n".join(docs)


def license_texts() -> str:
    """The license files the core dependencies ship, each once (sorted by distribution and path)."""
    seen, texts = set(), []
    python_license = stdlib_dir() / "LICENSE.txt"
    sources = [python_license.read_text(encoding="utf-8", errors="replace")] if python_license.is_file() else []
    for name in CORE_DISTRIBUTIONS:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for file in sorted(dist.files or [], key=str):
            if file.name.upper().startswith(LICENSE_NAMES):
                try:
                    sources.append(dist.locate_file(file).read_text(encoding="utf-8", errors="replace"))
                except OSError:
                    continue
    for text in sources:
        digest = hashlib.sha256(text.encode()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            texts.append(text.strip())
    return "\n\n".join(texts)


class _TextOnly(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs) -> None:
        self.skip += tag in ("script", "style")

    def handle_endtag(self, tag) -> None:
        self.skip -= tag in ("script", "style") and self.skip > 0

    def handle_data(self, data) -> None:
        if not self.skip:
            self.parts.append(data)


def idle_texts() -> str:
    """IDLE's manual and notes, shipped in the standard library's idlelib (some distributions split it off)."""
    root = stdlib_dir() / "idlelib"
    if not (root / "help.html").is_file():
        raise CorpusUnavailable(f"{root}/help.html is missing (this Python ships without idlelib): "
                                "evaluate on --corpus licenses instead")
    parser = _TextOnly()
    parser.feed((root / "help.html").read_text(encoding="utf-8"))
    manual = "\n".join(line.strip() for line in "".join(parser.parts).splitlines() if line.strip())
    notes = [(root / name).read_text(encoding="utf-8", errors="replace") for name in IDLE_FILES
             if (root / name).is_file()]
    return "\n\n".join([manual, *notes])


@cache
def corpus_text(name: str) -> str:
    """The text of one corpus (not `train-mix`, not `words`: they are drawn per document)."""
    if name == "pydoc":
        return clean(stdlib_prose())
    if name == "docstrings":
        return clean(stdlib_docstrings())
    if name == "licenses":
        return clean(license_texts())
    if name == "idle":
        return clean(idle_texts())
    raise ValueError(f"corpus must be one of {CORPORA}, got {name!r}")


@lru_cache(maxsize=1)
def training_words() -> tuple[str, ...]:
    return tuple(corpus_text("pydoc").split() + corpus_text("docstrings").split())


def window(rng: random.Random, n: int, text: str) -> str:
    """n bytes of `text` from a random place (wrapping round for long documents)."""
    start = rng.randrange(len(text))
    if start + n <= len(text):
        return text[start : start + n]
    return (text[start:] + text * (1 + n // len(text)))[:n]


def random_words(rng: random.Random, n: int) -> str:
    """n bytes of training-corpus words in random order: text with no sentence in it."""
    words = training_words()
    out = " ".join(rng.choices(words, k=n // 4 + 8))
    while len(out) < n:
        out += " " + " ".join(rng.choices(words, k=n // 4 + 8))
    return out[:n]


def filler(rng: random.Random, n: int, corpus: str = "pydoc") -> str:
    """n bytes of prose from `corpus`; `train-mix` picks one training corpus for the whole document."""
    if corpus == "train-mix":
        corpus = rng.choices(list(TRAIN_CORPORA), weights=list(TRAIN_CORPORA.values()))[0]
    if corpus == "words":
        return random_words(rng, n)
    return window(rng, n, corpus_text(corpus))
