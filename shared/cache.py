"""Where the project keeps converted models and downloaded corpora."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "HYBRID_AI_CACHE"


def cache_dir(*parts: str) -> Path:
    """$HYBRID_AI_CACHE, else $XDG_CACHE_HOME/hybrid-ai, else ~/.cache/hybrid-ai (created)."""
    root = os.environ.get(CACHE_ENV)
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "hybrid-ai"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
