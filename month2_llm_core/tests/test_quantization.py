"""Quantization: the measurements behind the table (perplexity, disk size) on small inputs."""

import copy

import pytest
import torch

from month2_llm_core.hub import memory_bytes
from month2_llm_core.inference import optimize_for_cpu
from month2_llm_core.quantization import disk_bytes, held_out_text, int8_dynamic, load_variant, perplexity


def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    return LlamaForCausalLM(config).eval()


def test_disk_size_uses_safetensors_and_falls_back_to_torch_save_for_packed_weights():
    model = tiny_llama()
    size, fmt = disk_bytes(model)
    params = sum(p.numel() for p in model.parameters())
    assert fmt == "safetensors" and 4 * params < size < 4 * params + 20_000  # weights + config + header
    int8_dynamic(model, keep_head=True)
    size8, fmt8 = disk_bytes(model)
    assert fmt8 == "torch.save" and size8 < size


@pytest.mark.model
def test_fast_path_keeps_fp32_perplexity(smollm2):
    model, tokenizer = smollm2
    text = held_out_text()
    fast = optimize_for_cpu(copy.deepcopy(model))
    ppl32, ppl_fast = perplexity(model, tokenizer, text, 256), perplexity(fast, tokenizer, text, 256)
    assert 2 < ppl32 < 100
    # Not bit-exact: the fp16 weights are, but the head's far tail keeps int8 scores, which move the softmax's
    # normaliser a little (measured ~0.1%).
    assert abs(ppl_fast - ppl32) / ppl32 < 5e-3


@pytest.mark.model
def test_nf4_is_three_times_smaller_and_a_little_worse(smollm2):
    model, tokenizer = smollm2
    nf4, _ = load_variant("bnb-nf4", base=smollm2)
    text = held_out_text()
    assert memory_bytes(nf4) < 0.35 * memory_bytes(model)
    ppl32, ppl4 = perplexity(model, tokenizer, text, 256), perplexity(nf4, tokenizer, text, 256)
    assert ppl32 < ppl4 < 1.6 * ppl32
