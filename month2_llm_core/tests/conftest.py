"""Shared fixtures for month 2's tests: the real SmolLM2, loaded once per session (~2 s).

Tests that change a model must work on a copy (`copy.deepcopy(model)`): the fixture is shared."""

import pytest


@pytest.fixture(scope="session")
def smollm2():
    """(model, tokenizer): SmolLM2-135M-Instruct in fp32, eval mode, from the offline store."""
    from shared.models import load_chat_model
    from shared.runtime import set_threads

    set_threads()
    return load_chat_model(progress=False)


@pytest.fixture(scope="session")
def smollm2_tokenizer(smollm2):
    return smollm2[1]
