"""Text corpora for demos, tests and benchmarks.

Two kinds:
- `tiny_shakespeare(path)`: the public tiny-Shakespeare file from a local path, or
  downloaded once (for online users) into the cache.
- Corpora that exist offline on every machine because Python ships them: the
  standard library's own source files (code) and its documentation topics (prose).
"""

from __future__ import annotations

import hashlib
import os
import sysconfig
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from shared.cache import cache_dir
from shared.errors import UserError

SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
SHAKESPEARE_ENV = "TINY_SHAKESPEARE"


class CorpusUnavailable(UserError):
    pass


def tiny_shakespeare(path: str | os.PathLike | None = None, download: bool = True) -> str:
    """Tiny Shakespeare (1,115,394 characters).

    Looks at `path`, then $TINY_SHAKESPEARE, then the cache; otherwise downloads the
    public file (checked against its sha256). Offline without a copy it raises
    CorpusUnavailable saying how to get one; use `stdlib_prose()` instead.
    """
    candidates = [Path(p) for p in (path, os.environ.get(SHAKESPEARE_ENV)) if p]
    cached = cache_dir("corpora") / "tinyshakespeare.txt"
    candidates.append(cached)
    for candidate in candidates:
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    if path:
        raise CorpusUnavailable(f"no file at {path}")
    if not download:
        raise CorpusUnavailable("tiny Shakespeare is not cached; pass a path or allow download")
    try:
        with urllib.request.urlopen(SHAKESPEARE_URL, timeout=10) as response:
            data = response.read()
    except OSError as err:
        raise CorpusUnavailable(
            f"could not download tiny Shakespeare ({err}). Offline? Pass a local copy with "
            f"--data PATH or set ${SHAKESPEARE_ENV}, or use the offline 'stdlib' corpus."
        ) from err
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHAKESPEARE_SHA256:
        raise CorpusUnavailable(f"downloaded file has sha256 {digest}, expected {SHAKESPEARE_SHA256}")
    tmp = cached.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, cached)
    return data.decode("utf-8")


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_source_files() -> list[Path]:
    """The standard library's .py files (tests and site-packages excluded), sorted."""
    root = stdlib_dir()
    skip = {"site-packages", "test", "tests", "idlelib", "lib2to3", "__pycache__"}
    files = [p for p in root.rglob("*.py") if not skip.intersection(p.relative_to(root).parts)]
    return sorted(files)


def iter_stdlib_code() -> Iterator[str]:
    for path in stdlib_source_files():
        try:
            yield path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue


def stdlib_code(max_chars: int | None = None) -> str:
    """Concatenated standard-library sources (tens of MB in full); `max_chars` to cut."""
    parts, total = [], 0
    for text in iter_stdlib_code():
        parts.append(text)
        total += len(text)
        if max_chars and total >= max_chars:
            break
    joined = "\n".join(parts)
    return joined[:max_chars] if max_chars else joined


def stdlib_prose(max_chars: int | None = None) -> str:
    """English prose: the Python documentation topics that `help()` shows (~0.47 MB)."""
    from pydoc_data.topics import topics

    joined = "\n\n".join(topics[key].strip() for key in sorted(topics))
    return joined[:max_chars] if max_chars else joined


def load_corpus(name_or_path: str, max_chars: int | None = None) -> str:
    """'shakespeare', 'stdlib' (prose), 'stdlib-code', or a path to a UTF-8 text file."""
    if name_or_path == "shakespeare":
        text = tiny_shakespeare()
    elif name_or_path == "stdlib":
        text = stdlib_prose()
    elif name_or_path == "stdlib-code":
        text = stdlib_code(max_chars)
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise CorpusUnavailable(
                f"{name_or_path!r} is neither a corpus name (shakespeare, stdlib, stdlib-code) nor a file"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise CorpusUnavailable(f"{name_or_path} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    return text[:max_chars] if max_chars else text
