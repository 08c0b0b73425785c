"""The hub, offline: inspect, memory accounting, save/reload with safetensors, model cards."""

import pytest
from huggingface_hub import ModelCard
from torch import nn

from month2_llm_core.hub import (
    CardInfo,
    count_parameters,
    folder_bytes,
    inspect_model,
    logit_difference,
    memory_bytes,
    save_folder,
    write_model_card,
)
from month2_llm_core.inference import fp16_weight_linears
from month2_llm_core.quantization import int8_dynamic, quiet_quantization


def test_memory_bytes_counts_tied_weights_once_and_packed_weights_at_their_width():
    emb = nn.Embedding(100, 16)
    head = nn.Linear(16, 100, bias=False)
    head.weight = emb.weight  # tied
    model = nn.ModuleDict({"emb": emb, "head": head, "mlp": nn.Linear(16, 32)})
    assert memory_bytes(model) == 4 * (100 * 16 + 16 * 32 + 32)
    fp16_weight_linears(model)  # every Linear, the tied head included
    # The head now holds its own fp16 copy; the embedding stays fp32.
    assert memory_bytes(model) == 4 * 100 * 16 + 2 * 100 * 16 + 2 * 16 * 32 + 4 * 32


def test_int8_dynamic_weights_take_one_byte():
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = nn.Sequential(nn.Linear(64, 64, bias=False))
            self.lm_head = nn.Linear(64, 10, bias=False)
            self.config = type("C", (), {"tie_word_embeddings": False})()

    tiny = Tiny()
    with quiet_quantization():
        int8_dynamic(tiny, keep_head=True)
    assert memory_bytes(tiny) == 64 * 64 + 4 * 64 * 10


@pytest.mark.model
def test_inspect_smollm2(smollm2):
    model, _ = smollm2
    info = inspect_model(model, "smollm2")
    assert info.architecture == "LlamaForCausalLM" and info.layers == 30 and info.hidden == 576
    assert info.heads == 9 and info.kv_heads == 3 and info.vocab == 49152 and info.tied_embeddings
    assert 134e6 < info.parameters < 135e6 and info.trainable == info.parameters
    assert info.memory_bytes == 4 * info.parameters + sum(b.nbytes for b in model.buffers())  # fp32 + rotary
    assert "LlamaForCausalLM" in info.format()


@pytest.mark.model
def test_save_reload_gives_identical_logits_and_a_model_card(smollm2, tmp_path):
    from shared.models import load_chat_model

    model, tokenizer = smollm2
    card = CardInfo(title="SmolLM2 test copy", summary="Saved by a test.", metrics={"logit max diff": "0"},
                    commands=["pytest month2_llm_core/tests/test_hub.py"], tags=["test"])
    folder = save_folder(model, tokenizer, tmp_path / "copy", card)
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert folder_bytes(folder) > 4 * 134e6  # fp32 weights
    reloaded, tok2 = load_chat_model(str(folder), progress=False)
    ids = tokenizer("The hub, offline.", return_tensors="pt")["input_ids"]
    assert logit_difference(model, reloaded, ids) == 0.0
    assert tok2("The hub, offline.")["input_ids"] == tokenizer("The hub, offline.")["input_ids"]
    loaded = ModelCard.load(folder / "README.md")
    assert loaded.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct" and "test" in loaded.data.tags
    assert "| logit max diff | 0 |" in loaded.text and "pytest month2_llm_core" in loaded.text


def test_write_model_card_for_an_adapter(tmp_path):
    path = write_model_card(tmp_path, CardInfo(title="LoRA adapter", summary="s", library="peft",
                                               sections={"Held-out score": "| a | b |", "Checks": "- none"},
                                               usage="from peft import PeftModel"))
    card = ModelCard.load(path)
    assert card.data.library_name == "peft" and card.data.license == "apache-2.0"
    assert "## Usage" in card.text and "hybrid-ai-six-months" in card.data.tags
    assert card.text.index("## Held-out score") < card.text.index("## Checks") < card.text.index("## Usage")


def test_count_parameters_splits_trainable():
    layer = nn.Linear(4, 3)
    layer.bias.requires_grad_(False)
    assert count_parameters(layer) == (15, 12)
