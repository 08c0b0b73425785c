"""Train the mini-GPT on a text corpus; checkpoints resume, a loss-curve PNG is written.

    python -m month1_transformer train --data stdlib --max-steps 500
    python -m month1_transformer train --data shakespeare            # the nanoGPT "baby GPT" settings
    python -m month1_transformer train --data my.txt --tokenizer bpe --bpe-vocab 512
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from month1_transformer.data import make_get_batch, split_ids
from month1_transformer.model import GPT, GPTConfig
from month1_transformer.tokenizer import BytePairTokenizer, CharTokenizer
from shared.config import add_config_arguments, config_from_args
from shared.corpora import load_corpus
from shared.errors import UserError
from shared.plotting import plot_history
from shared.runtime import pick_device, seed_everything, set_threads
from shared.training import TrainConfig, Trainer


@dataclass
class RunConfig:
    data: str = field(
        default="stdlib", metadata={"help": "'shakespeare', 'stdlib' (offline prose), 'stdlib-code', or a text file"}
    )
    tokenizer: str = field(default="char", metadata={"help": "tokenizer", "choices": ("char", "bpe")})
    bpe_vocab: int = field(default=512, metadata={"help": "vocabulary size for --tokenizer bpe"})
    max_chars: int = field(default=0, metadata={"help": "use only the first N characters (0: all)"})
    val_fraction: float = field(default=0.1, metadata={"help": "last fraction of the corpus held out"})
    batch_size: int = field(default=12, metadata={"help": "sequences per step"})
    threads: int = field(default=0, metadata={"help": "torch threads (0: automatic)"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or mps"})
    compile: bool = field(default=False, metadata={"help": "torch.compile the model (slow start, faster steps)"})

    def __post_init__(self) -> None:
        if self.bpe_vocab < 256:
            raise ValueError(f"--bpe-vocab must be >= 256 (the 256 byte tokens come first), got {self.bpe_vocab}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"--val-fraction must be between 0 and 1, got {self.val_fraction}")
        if self.batch_size < 1 or self.max_chars < 0 or self.threads < 0:
            raise ValueError("--batch-size must be >= 1, --max-chars and --threads >= 0")


def build_tokenizer(text: str, cfg: RunConfig):
    if cfg.tokenizer == "char":
        return CharTokenizer.from_text(text)
    return BytePairTokenizer.train(text, cfg.bpe_vocab, progress=True)


def train(
    model_cfg: GPTConfig,
    train_cfg: TrainConfig,
    run_cfg: RunConfig,
    callback: Callable[[Trainer], None] | None = None,
) -> tuple[GPT, Trainer]:
    """Build data, model and trainer from the three configs; train; write plots and metrics.
    `callback(trainer)` runs after every step (e.g. a live loss plot in a notebook)."""
    threads = set_threads(run_cfg.threads or None)
    device = pick_device(run_cfg.device)
    text = load_corpus(run_cfg.data, run_cfg.max_chars or None)
    tokenizer = build_tokenizer(text, run_cfg)
    train_ids, val_ids = split_ids(tokenizer.encode(text), run_cfg.val_fraction)
    model_cfg.vocab_size = tokenizer.vocab_size
    seed_everything(train_cfg.seed)  # the initial weights follow --seed, whatever ran before in this process
    model = GPT(model_cfg).to(device)
    try:
        get_batch = make_get_batch(train_ids, val_ids, model_cfg.block_size, run_cfg.batch_size, device)
    except ValueError as err:  # a corpus too short for the block size
        raise UserError(f"{run_cfg.data}: {err}; use a longer text or a smaller --block-size") from None
    # Compile a wrapper for the loss only: checkpoints keep the plain module's parameter names.
    forward = torch.compile(model) if run_cfg.compile else model
    trainer = Trainer(
        model,
        get_batch,
        train_cfg,
        loss_fn=lambda _, batch: forward(*batch)[1],
        callback=callback,
        extra_state={"model_config": asdict(model_cfg), "tokenizer": tokenizer.to_dict()},
    )
    print(
        f"[train] {len(text):,} chars -> {len(train_ids):,}/{len(val_ids):,} train/val tokens "
        f"(vocab {tokenizer.vocab_size}); {model.num_params() / 1e6:.2f}M params; "
        f"{device}, {threads} threads, {trainer.autocast_dtype or torch.float32}; "
        f"step {trainer.step}/{train_cfg.max_steps}"
    )
    start_step, start = trainer.step, time.perf_counter()
    history = trainer.fit()
    elapsed = time.perf_counter() - start
    steps = trainer.step - start_step
    if steps:
        tok_s = steps * run_cfg.batch_size * model_cfg.block_size / elapsed
        print(f"[train] {steps} steps in {elapsed:.1f} s ({tok_s:,.0f} tokens/s)")
    if train_cfg.out_dir and history.step:
        out = Path(train_cfg.out_dir)
        plot_history(history, out / "loss.png", title=f"mini-GPT on {run_cfg.data}")
        metrics = {
            "step": trainer.step,
            "val_loss": history.eval_val[-1] if history.eval_val else None,
            "train_loss": history.eval_train[-1] if history.eval_train else None,
            "seconds": history.seconds,
        }
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        print(f"[train] checkpoint {trainer.ckpt_path}; loss curve {out / 'loss.png'}")
    return model, trainer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser.add_argument_group("data and run"), RunConfig)
    add_config_arguments(parser.add_argument_group("model"), GPTConfig)
    # bf16 autocast where the CPU makes it pay: the baby GPT trains ~1.3x faster to the same loss.
    add_config_arguments(parser.add_argument_group("training"), TrainConfig,
                         defaults={"out_dir": "runs/month1", "precision": "auto"})


def main(args: argparse.Namespace) -> None:
    train(config_from_args(GPTConfig, args), config_from_args(TrainConfig, args), config_from_args(RunConfig, args))
