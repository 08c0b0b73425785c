"""A small, readable training loop used by every month.

What it does for you: AdamW (fused where torch has it; or your optimizer), linear warmup
then cosine decay, gradient clipping, bf16 autocast where the hardware makes it pay, a
tqdm progress bar, periodic train/val evaluation, and atomic checkpoints that resume to
bit-identical weights after a kill: model, optimizer, step, history and every RNG the
loop uses (dropout's global RNG and the data sampler's own generator) are saved together.

Weight decay applies to matrices only; a parameter marked `p._no_weight_decay = True`
(Mamba's `A_log` and `D`, as state-spaces/mamba marks them) is never decayed.

The data side is a function `get_batch(split, generator) -> batch`; the loss is
`loss_fn(model, batch) -> scalar tensor` (by default `model(*batch)[1]`, the
nanoGPT convention of `logits, loss = model(x, y)`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from shared import checkpoint
from shared.runtime import bf16_is_fast

Batch = Any
GetBatch = Callable[[str, torch.Generator], Batch]
LossFn = Callable[[torch.nn.Module, Batch], torch.Tensor]


@dataclass
class TrainConfig:
    max_steps: int = field(default=2000, metadata={"help": "optimizer steps"})
    lr: float = field(default=1e-3, metadata={"help": "peak learning rate"})
    min_lr: float = field(default=1e-4, metadata={"help": "learning rate at the end of the cosine"})
    warmup_steps: int = field(default=100, metadata={"help": "linear warmup steps"})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay (matrices only)"})
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = field(default=1.0, metadata={"help": "max gradient norm; 0 disables"})
    eval_interval: int = field(default=250, metadata={"help": "steps between evaluations; 0 disables"})
    eval_batches: int = field(default=20, metadata={"help": "batches per split in an evaluation"})
    ckpt_interval: int = field(default=500, metadata={"help": "steps between checkpoints; 0: only at the end"})
    out_dir: str = field(default="", metadata={"help": "folder for ckpt.pt and plots; empty: no files"})
    resume: bool = field(default=True, metadata={"help": "continue from out_dir/ckpt.pt if it exists"})
    seed: int = 1337
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})
    precision: str = field(default="fp32", metadata={
        "help": "fp32, or bf16 autocast (fp32 master weights); auto: bf16 where the CPU has AVX-512 BF16 or "
                "AMX, or on a bf16 GPU", "choices": ("auto", "fp32", "bf16")})

    def __post_init__(self) -> None:
        counts = {"max_steps": self.max_steps, "warmup_steps": self.warmup_steps, "eval_interval": self.eval_interval,
                  "ckpt_interval": self.ckpt_interval}
        negative = [name for name, value in counts.items() if value < 0]
        if negative or self.eval_batches < 1:
            raise ValueError(f"{', '.join(negative) or 'eval_batches'}: steps and intervals must be >= 0, "
                             "eval_batches >= 1")
        if self.lr <= 0 or self.min_lr < 0 or self.grad_clip < 0 or self.weight_decay < 0:
            raise ValueError("lr must be > 0; min_lr, grad_clip and weight_decay >= 0")


def cosine_lr(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to cfg.lr, then cosine decay to cfg.min_lr at cfg.max_steps."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if step >= cfg.max_steps:
        return cfg.min_lr
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


def decays(p: torch.nn.Parameter) -> bool:
    """Weight decay for matrices (not biases, norms' gains), unless marked `_no_weight_decay`."""
    return p.dim() >= 2 and not getattr(p, "_no_weight_decay", False)


def make_adamw(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with weight decay where `decays(p)`; torch's fused kernel (one op for all
    parameters instead of several per parameter) when every parameter's device has it."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if decays(p)], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if not decays(p)], "weight_decay": 0.0},
    ]
    fused = all(p.device.type in ("cpu", "cuda") for p in params) or None
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=fused)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `precision` on `device` (None: plain fp32)."""
    if precision == "bf16" or (precision == "auto" and bf16_is_fast(device)):
        return torch.bfloat16
    return None


def with_autocast(loss_fn: LossFn, device: torch.device, dtype: torch.dtype | None) -> LossFn:
    """`loss_fn` run under autocast to `dtype` (unchanged when dtype is None)."""
    if dtype is None:
        return loss_fn

    def autocast_loss(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
        with torch.autocast(device.type, dtype=dtype):
            return loss_fn(model, batch).float()

    return autocast_loss


def default_loss(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    return model(*batch)[1]


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    grad_clip: float = 1.0,
    loss_fn: LossFn = default_loss,
) -> float:
    """One optimizer step: forward, backward, clip the gradient norm, update. Returns the loss."""
    loss = loss_fn(model, batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.item()


@dataclass
class History:
    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    eval_train: list[float] = field(default_factory=list)
    eval_val: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def estimate_loss(
    model: torch.nn.Module, get_batch: GetBatch, loss_fn: LossFn, batches: int, seed: int
) -> dict[str, float]:
    """Mean loss over `batches` batches per split, drawn from a fixed-seed generator so
    evaluation neither depends on nor disturbs the training data stream."""
    was_training = model.training
    model.eval()
    out = {}
    for split in ("train", "val"):
        gen = torch.Generator().manual_seed(seed)
        losses = [loss_fn(model, get_batch(split, gen)).item() for _ in range(batches)]
        out[split] = sum(losses) / len(losses)
    model.train(was_training)
    return out


class Trainer:
    """Trains `model` with `get_batch`; `fit()` returns the History.

    `callback(trainer)` runs after every step (live plots, early stop, simulated
    interruptions in tests); raising KeyboardInterrupt from it stops the run cleanly.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        get_batch: GetBatch,
        cfg: TrainConfig,
        loss_fn: LossFn = default_loss,
        optimizer: torch.optim.Optimizer | None = None,
        callback: Callable[[Trainer], None] | None = None,
        extra_state: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.get_batch = get_batch
        self.cfg = cfg
        device = next(model.parameters()).device
        self.autocast_dtype = autocast_dtype(cfg.precision, device)
        self.loss_fn = with_autocast(loss_fn, device, self.autocast_dtype)
        self.optimizer = optimizer or make_adamw(model, cfg)
        self.callback = callback
        # Saved in every checkpoint (e.g. the model config, the tokenizer) for the sampler.
        self.extra_state = extra_state or {}
        self.step = 0
        self.history = History()
        self.data_gen = torch.Generator().manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        if cfg.out_dir and cfg.resume and self.ckpt_path.exists():
            self.load(self.ckpt_path)

    @property
    def ckpt_path(self) -> Path:
        return Path(self.cfg.out_dir) / "ckpt.pt"

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "history": self.history.as_dict(),
            "data_rng": self.data_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "train_config": asdict(self.cfg),
            **self.extra_state,
        }

    def save(self, path: Path | None = None) -> Path:
        return checkpoint.atomic_save(self.state_dict(), path or self.ckpt_path)

    def load(self, path: Path) -> None:
        self.load_state_dict(checkpoint.load(path))

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` saved (subclasses that save part of the model override both)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = state["step"]
        self.history = History(**state["history"])
        self.data_gen.set_state(state["data_rng"])
        torch.set_rng_state(state["torch_rng"])

    def evaluate(self) -> dict[str, float]:
        losses = estimate_loss(self.model, self.get_batch, self.loss_fn, self.cfg.eval_batches, self.cfg.seed)
        h = self.history
        h.eval_step.append(self.step)
        h.eval_train.append(losses["train"])
        h.eval_val.append(losses["val"])
        return losses

    def fit(self) -> History:
        cfg = self.cfg
        self.model.train()
        bar = tqdm(
            total=cfg.max_steps, initial=self.step, disable=not cfg.progress, desc="train", dynamic_ncols=True
        )
        start = time.perf_counter() - self.history.seconds
        try:
            while self.step < cfg.max_steps:
                lr = cosine_lr(self.step, cfg)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                batch = self.get_batch("train", self.data_gen)
                loss = train_step(self.model, self.optimizer, batch, cfg.grad_clip, self.loss_fn)
                self.step += 1
                h = self.history
                h.step.append(self.step)
                h.loss.append(loss)
                h.lr.append(lr)
                h.seconds = time.perf_counter() - start
                bar.update(1)
                if cfg.eval_interval and (self.step % cfg.eval_interval == 0 or self.step == cfg.max_steps):
                    losses = self.evaluate()
                    bar.set_postfix(train=f"{losses['train']:.3f}", val=f"{losses['val']:.3f}")
                elif self.step % 10 == 0:
                    bar.set_postfix(loss=f"{loss:.3f}")
                if cfg.out_dir and cfg.ckpt_interval and self.step % cfg.ckpt_interval == 0:
                    self.save()
                if self.callback:
                    self.callback(self)
        except KeyboardInterrupt:
            bar.write(f"interrupted at step {self.step}; resume from the last checkpoint")
        finally:
            bar.close()
        if cfg.out_dir and self.step >= cfg.max_steps:
            self.save()
        return self.history
