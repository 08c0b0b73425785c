"""Shared fixtures for month 5's tests: the real embedding model (loaded once per session), the
generated evaluation set (written once per session), and helpers that build small documents."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture(scope="session")
def minilm():
    """all-MiniLM-L6-v2 from the offline store, 1 thread."""
    from month5_rag.embeddings import Embedder
    from shared.runtime import set_threads

    set_threads(1)
    return Embedder()


@pytest.fixture(scope="session")
def generated(tmp_path_factory):
    from month5_rag.corpus import generated_set

    return generated_set(tmp_path_factory.mktemp("generated"))


@pytest.fixture(scope="session")
def handwritten():
    from month5_rag.corpus import handwritten_set

    return handwritten_set()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
