"""The offline model store: the real SmolLM2 from the cache, clear failures for hub names."""

import os

import pytest
import torch

from shared import models


@pytest.mark.model
def test_chat_model_answers_from_the_offline_cache():
    from shared.demo import answer

    model, tokenizer = models.load_chat_model()
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    assert model.dtype == torch.float32
    assert "Paris" in answer(model, tokenizer, "What is the capital of France?", max_new_tokens=20)


@pytest.mark.model
def test_converted_folder_is_a_normal_hf_folder():
    folder = models.smollm2_folder()
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert not list(folder.parent.glob(folder.name + ".tmp-*")), "a half-written conversion was left behind"
    assert 200e6 < (folder / "model.safetensors").stat().st_size < 300e6  # bf16


def test_embedding_model_ships_in_a_wheel():
    path = models.embedding_model_path()
    assert os.path.isfile(os.path.join(path, "config.json"))


def test_unknown_hub_name_fails_fast_and_clearly(monkeypatch):
    """Hub unreachable and nobody set HF_HUB_OFFLINE: we must not sit in the hub client's
    retry loop (about 25 s of back-off per file) but fail at once with a useful message."""
    import time

    import transformers  # imported first on purpose: the env variable alone would be too late

    assert transformers
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(models, "hub_reachable", lambda: False)
    start = time.perf_counter()
    with pytest.raises(models.ModelUnavailable, match="not in the Hugging Face cache"):
        models.load_chat_model("no-such-org/no-such-model")
    assert time.perf_counter() - start < 15
