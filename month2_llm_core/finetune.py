"""Fine-tune SmolLM2 to emit strict JSON tool calls, with LoRA (or QLoRA on a 4-bit base).

    python -m month2_llm_core finetune --config toolcall_lora    # the committed adapter (~20 min, 1 thread)
    python -m month2_llm_core finetune --config toolcall_qlora   # the same on a 4-bit NF4 base
    python -m month2_llm_core finetune --max-steps 20 --eval-n 20   # a quick try -> runs/month2/toolcall-lora/adapter

Supervised fine-tuning on `toolcalls.make_examples("train")`: the loss covers only the
answer tokens (the JSON and the end-of-turn token), never the prompt. The loop is
`shared.training.Trainer` (cosine LR, clipping, resumable checkpoints); checkpoints
hold the adapter only, since the frozen base comes back from the model store.
After training the adapter is saved with a model card, reloaded from disk, merged
with `merge_and_unload`, and both are checked against the trained model's outputs.
Loading the result: `toolcall_model`; scoring: `toolcall_eval`.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from month2_llm_core.adapter_card import adapter_card
from month2_llm_core.hub import explain_load_errors, write_model_card
from month2_llm_core.toolcall_eval import evaluate, failures
from month2_llm_core.toolcall_model import generate_answers, load_adapter, load_base_model, save_adapter
from month2_llm_core.toolcall_pool import make_mixed_examples
from month2_llm_core.toolcalls import Example, build_training_text, make_examples
from shared.config import add_config_arguments, config_from_args
from shared.errors import UserError
from shared.models import SMOLLM2, load_chat_model
from shared.plotting import plot_history
from shared.runtime import seed_everything, set_threads
from shared.training import TrainConfig, Trainer

RUN_DIR = "runs/month2/toolcall-lora"  # checkpoints, and the adapter unless --adapter-dir says otherwise
DATASETS = {"builtin": make_examples, "mixed": make_mixed_examples}  # FinetuneConfig.data -> generator
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
    data: str = field(default="builtin", metadata={
        "help": "'builtin': the four tools in every prompt (toolcalls.make_examples); 'mixed': a tool list "
                "per request, pool tools, word problems and no-tool requests (toolcall_pool.make_mixed_examples)"})
    data_seed: int = field(default=0, metadata={"help": "seed of the example generator"})
    qlora: bool = field(default=False, metadata={"help": "train on a 4-bit NF4 base (bitsandbytes) instead of fp32"})
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "recompute activations in the backward pass: less memory, slower steps"}
    )
    adapter_dir: str = field(default="", metadata={"help": "where to save the adapter (empty: OUT_DIR/adapter)"})
    eval_n: int = field(default=100, metadata={"help": "held-out examples scored after training (0: skip)"})
    eval_base: bool = field(default=True, metadata={"help": "also score the base model (adapter disabled)"})
    threads: int = field(default=0, metadata={"help": "torch threads (0: $HYBRID_AI_THREADS or automatic)"})

    def __post_init__(self) -> None:
        if min(self.r, self.alpha, self.batch_size, self.max_length, self.n_train) < 1:
            raise ValueError("--r, --alpha, --batch-size, --max-length and --n-train must be at least 1")
        if not 0 <= self.dropout < 1 or min(self.eval_n, self.threads) < 0:
            raise ValueError(f"--dropout must be in [0, 1) (got {self.dropout}); --eval-n and --threads >= 0")
        if self.data not in DATASETS:
            raise ValueError(f"--data must be one of {sorted(DATASETS)}, got {self.data!r}")
        if not self.modules():
            raise ValueError("--target-modules names no layer")

    def modules(self) -> list[str]:
        """The layer names of `target_modules`."""
        return [m.strip() for m in self.target_modules.split(",") if m.strip()]


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
    "out_dir": RUN_DIR,
}


def train_config(**overrides: Any) -> TrainConfig:
    return TrainConfig(**{**TRAIN_DEFAULTS, **overrides})


# ---------------------------------------------------------------- model


def add_lora(model, cfg: FinetuneConfig):
    """Wrap `model` (in place) with fresh LoRA adapters; only they require gradients."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=cfg.modules(),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def trainable_state(model) -> dict[str, torch.Tensor]:
    """The parameters that train (the adapter), by state_dict name."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


# ---------------------------------------------------------------- data


def encode_example(tokenizer, example: Example, max_length: int) -> tuple[list[int], list[int]] | None:
    """(input ids, labels) of a tool-call example with the prompt's labels masked, or None when too long."""
    return encode_pair(tokenizer, *build_training_text(tokenizer, example), max_length)


def encode_pair(tokenizer, prompt: str, completion: str, max_length: int) -> tuple[list[int], list[int]] | None:
    """(input ids, labels) of any (prompt, completion) texts with the prompt's labels masked, or
    None when too long (other tasks, e.g. month 4's experts, train on their own pairs).
    Prompt and answer are tokenized separately: a chat-template prompt ends with a newline, so no
    token can straddle the boundary, and the mask falls exactly on the answer."""
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


# ---------------------------------------------------------------- checks


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
                text = str(value).lower() if isinstance(value, bool) else json.dumps(value) if value == "" else value
                parts.append(f"--{key.replace('_', '-')} {text}")
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
    try:
        train_examples = DATASETS[cfg.data]("train", cfg.n_train, cfg.data_seed)
        heldout = DATASETS[cfg.data]("heldout", max(cfg.eval_n, 32), cfg.data_seed)
    except ValueError as err:  # more distinct examples than the templates can make
        raise UserError(f"--n-train {cfg.n_train} / --eval-n {cfg.eval_n}: {err}") from None
    with explain_load_errors(cfg.model):
        model, tokenizer = load_base_model(cfg.model, cfg.qlora, cfg.gradient_checkpointing)
    try:
        model = add_lora(model, cfg)
    except ValueError as err:  # peft: a target module the model does not have
        raise UserError(f"--target-modules {cfg.target_modules}: {err}") from None
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    # The held-out split doubles as the Trainer's "val" split (its loss goes on the curve).
    encoded, dropped = encode_splits(tokenizer, {"train": train_examples, "val": heldout}, cfg.max_length)
    if not encoded["train"] or not encoded["val"]:
        raise UserError(f"--max-length {cfg.max_length}: every example of a split is longer; "
                        f"the default {FinetuneConfig.max_length} fits them all")
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

    adapter_dir = Path(cfg.adapter_dir or Path(train_cfg.out_dir or RUN_DIR) / "adapter")
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
    expected = answer_logits(model, tokenizer, logit_examples)
    merged = copy.deepcopy(model).merge_and_unload()
    diff = (answer_logits(merged, tokenizer, logit_examples) - expected).abs().max().item()
    answers = generate_answers(merged, tokenizer, [e.request for e in examples], tools=[e.tools for e in examples])
    same = sum(a == b for a, b in zip(answers, adapter_answers))
    print(f"[finetune] merged: max |logit diff| {diff:.2e}; {same}/{len(examples)} greedy answers identical")
    return {"max_abs_logit_diff": diff, "same_answers": same, "n": len(examples)}


# ---------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser.add_argument_group("fine-tuning"), FinetuneConfig)
    add_config_arguments(parser.add_argument_group("training loop"), TrainConfig, defaults=TRAIN_DEFAULTS)


def main(args: argparse.Namespace) -> None:
    finetune(config_from_args(FinetuneConfig, args), config_from_args(TrainConfig, args))
