"""LoRA / QLoRA fine-tuning on the real SmolLM2 (tiny runs), and the committed adapter's score."""

import argparse

import pytest
import torch

from month2_llm_core import finetune as ft
from month2_llm_core import toolcall_eval
from month2_llm_core.toolcall_model import load_adapter, load_base_model, load_toolcall_model
from month2_llm_core.toolcalls import make_examples
from shared.config import config_from_args
from shared.models import load_chat_model
from shared.training import TrainConfig, make_adamw, train_step


def test_cli_options_and_defaults():
    parser = argparse.ArgumentParser()
    ft.add_arguments(parser)
    args = parser.parse_args(["--r", "4", "--qlora", "true", "--target-modules", "q_proj,v_proj", "--lr", "1e-3"])
    cfg, train_cfg = config_from_args(ft.FinetuneConfig, args), config_from_args(TrainConfig, args)
    assert (cfg.r, cfg.qlora, cfg.target_modules) == (4, True, "q_proj,v_proj")
    assert train_cfg.lr == 1e-3 and train_cfg.max_steps == ft.TRAIN_DEFAULTS["max_steps"]
    assert ft.command_line(cfg, train_cfg).endswith("--r 4 --target-modules q_proj,v_proj --qlora true --lr 0.001")
    parser = argparse.ArgumentParser()
    toolcall_eval.add_arguments(parser)
    assert config_from_args(toolcall_eval.EvalConfig, parser.parse_args(["--adapter", ""])).adapter == ""


def test_answer_loss_equals_transformers_loss_through_a_peft_wrapper():
    """Scoring only the labelled positions gives transformers' own loss and gradients."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    base = LlamaForCausalLM(LlamaConfig(vocab_size=101, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True))
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    masked = ft.IGNORE_INDEX
    examples = [([5, 6, 7, 8, 9, 10], [masked] * 3 + [8, 9, 10]), ([11, 12, 13, 14], [masked, 12, 13, 14])]
    batch = ft.collate(examples, pad_id=0)
    ours = ft.answer_loss(model, batch)
    ours.backward()
    ours_grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    model.zero_grad()
    theirs = model(**batch, use_cache=False).loss
    theirs.backward()
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-6)
    for mine, ref in zip(ours_grads, (p.grad for p in model.parameters() if p.requires_grad)):
        torch.testing.assert_close(mine, ref, atol=1e-6, rtol=1e-5)


@pytest.mark.model
def test_loss_covers_only_the_answer_tokens(smollm2_tokenizer):
    tokenizer = smollm2_tokenizer
    example = make_examples("train", 1)[0]
    ids, labels = ft.encode_example(tokenizer, example, 256)
    answer_ids = [t for t in labels if t != ft.IGNORE_INDEX]
    assert tokenizer.decode(answer_ids) == example.answer + tokenizer.eos_token
    assert labels[: len(ids) - len(answer_ids)] == [ft.IGNORE_INDEX] * (len(ids) - len(answer_ids))
    assert ids[-len(answer_ids) :] == answer_ids  # the unmasked labels are the sequence's own tail
    assert ft.encode_example(tokenizer, example, 50) is None  # too long: dropped, never truncated


@pytest.mark.model
def test_encode_pair_masks_the_prompt_of_any_pair(smollm2_tokenizer):
    """Other tasks train on their own (prompt, completion) texts (month 4's experts): same masking."""
    tokenizer = smollm2_tokenizer
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2 + 2?"}], tokenize=False,
                                           add_generation_prompt=True)
    completion = "2 + 2 = 4." + tokenizer.eos_token
    ids, labels = ft.encode_pair(tokenizer, prompt, completion, 128)
    answer = [t for t in labels if t != ft.IGNORE_INDEX]
    assert tokenizer.decode(answer) == completion and ids[-len(answer):] == answer
    assert labels[: -len(answer)] == [ft.IGNORE_INDEX] * (len(ids) - len(answer))
    assert ids == tokenizer(prompt + completion, add_special_tokens=False)["input_ids"]  # no token straddles
    assert ft.encode_pair(tokenizer, prompt, "x", 5) is None  # too long: dropped


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Four LoRA steps on two examples through the real `finetune` (adapter saved, reloaded,
    merged, two held-out examples scored): ~1 minute on one thread."""
    out = tmp_path_factory.mktemp("lora")
    cfg = ft.FinetuneConfig(n_train=2, batch_size=2, eval_n=2, threads=1)
    train_cfg = ft.train_config(max_steps=4, warmup_steps=0, lr=3e-3, eval_interval=0, ckpt_interval=2,
                                out_dir=str(out), progress=False)
    return ft.finetune(cfg, train_cfg)


@pytest.mark.model
@pytest.mark.slow
def test_lora_steps_lower_the_loss_on_their_examples(tiny_run):
    model, tokenizer = tiny_run.model, tiny_run.tokenizer
    batch = ft.collate([ft.encode_example(tokenizer, e, 256) for e in tiny_run.train_examples], tokenizer.pad_token_id)
    with torch.no_grad():
        tuned = ft.answer_loss(model, batch).item()
        with model.disable_adapter():
            base = ft.answer_loss(model, batch).item()
    assert tuned < 0.5 * base, (base, tuned)
    # Only the adapter trained; the checkpoint holds just that (a few MB, not the 540 MB base).
    state = torch.load(tiny_run.adapter_dir.parent / "ckpt.pt", weights_only=False)
    assert state["step"] == 4 and state["model"] and all("lora_" in k for k in state["model"])
    assert sum(v.numel() for v in state["model"].values()) == tiny_run.metrics["trainable_params"]


@pytest.mark.model
@pytest.mark.slow
def test_saved_adapter_reloads_exactly_and_merges_within_tolerance(tiny_run):
    model, tokenizer, examples = tiny_run.model, tiny_run.tokenizer, make_examples("heldout", 2)
    expected = ft.answer_logits(model, tokenizer, examples)
    reloaded = load_adapter(load_chat_model()[0], tiny_run.adapter_dir)
    assert torch.equal(ft.answer_logits(reloaded, tokenizer, examples), expected)
    merged = reloaded.merge_and_unload()
    assert not any("lora" in name for name, _ in merged.named_modules())
    # W + (alpha/r) B A folded into W: only fp32 rounding differs (measured ~1e-4 on logits of size ~30).
    torch.testing.assert_close(ft.answer_logits(merged, tokenizer, examples), expected, atol=2e-3, rtol=0)
    card = (tiny_run.adapter_dir / "README.md").read_text()
    assert "Held-out exact match" in card and "python -m month2_llm_core finetune" in card
    assert (tiny_run.adapter_dir / "loss.png").is_file()
    assert tiny_run.metrics["merge"]["same_answers"] == tiny_run.metrics["merge"]["n"]


@pytest.mark.model
@pytest.mark.slow
def test_committed_adapter_beats_the_base_model_on_heldout():
    """The real trained adapter (month2_llm_core/adapters/toolcall-lora), greedy, 20 held-out
    requests (templates and topics never seen in training), same prompt for both models."""
    model, tokenizer = load_toolcall_model(merge=False)  # what month 6 loads, unmerged to switch it off
    examples = make_examples("heldout", 20)
    tuned, _ = toolcall_eval.evaluate(model, tokenizer, examples, max_new_tokens=40)
    with model.disable_adapter():
        base, _ = toolcall_eval.evaluate(model, tokenizer, examples, max_new_tokens=40)
    assert tuned["exact_match"] >= 0.8, tuned
    assert base["exact_match"] <= 0.2, base
    assert tuned["exact_match"] - base["exact_match"] >= 0.6


@pytest.mark.model
def test_one_qlora_step_changes_only_the_adapter():
    import bitsandbytes as bnb

    torch.manual_seed(0)
    model, tokenizer = load_base_model(qlora=True)
    model = ft.add_lora(model, ft.FinetuneConfig(r=4, target_modules="q_proj,v_proj"))
    q_proj = model.base_model.model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj.base_layer, bnb.nn.Linear4bit) and q_proj.base_layer.weight.quant_type == "nf4"
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    batch = ft.collate([ft.encode_example(tokenizer, make_examples("train", 1)[0], 256)], tokenizer.pad_token_id)
    model.train()
    loss = train_step(model, make_adamw(model, TrainConfig(lr=1e-3, weight_decay=0.0)), batch, 1.0, ft.answer_loss)
    assert loss == loss and loss > 0  # finite
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    lora_b = {k for k in before if "lora_B" in k}
    assert lora_b and lora_b <= changed  # B starts at zero; one step moves every B
    assert all("lora_" in k for k in changed), sorted(changed - lora_b)[:5]
    # Regression: with bitsandbytes' CPU repacking left on, an eval forward followed by state_dict()
    # (every checkpoint and save_pretrained does one) silently wrecked the 4-bit weights.
    model.eval()
    with torch.no_grad():
        eval_loss = ft.answer_loss(model, batch).item()
        model.state_dict()
        assert ft.answer_loss(model, batch).item() == pytest.approx(eval_loss, abs=1e-5)
