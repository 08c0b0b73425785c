"""Train a small byte-level model on the long-document recall task (recall.py), on CPU.

    python -m month3_mamba train-recall --out-dir runs/month3_recall --export month3_mamba/checkpoints/recall.pt
    python -m month3_mamba train-recall --arch hybrid --n-layer 3 --attn-every 3 --out-dir runs/month3_recall_hybrid
    python -m month3_mamba train-recall --arch rwkv --ffn-mult 2 --out-dir runs/month3_recall_rwkv
    python -m month3_mamba train-recall --arch transformer --pos-enc rope --out-dir runs/month3_recall_gpt

Training runs at short lengths (a curriculum from --seq-len to --max-seq-len bytes); the
Trainer checkpoints to --out-dir, so an interrupted run resumes where it stopped. --export
writes the small inference checkpoint (weights, configs, no optimizer) the reader loads.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from month1_transformer.model import GPT, GPTConfig
from month3_mamba.hybrid import HybridConfig, HybridLM
from month3_mamba.model import MambaConfig, MambaLM
from month3_mamba.recall import RecallBatches, RecallTaskConfig, evaluate_recall
from month3_mamba.rwkv import RWKVLM, RWKVConfig
from shared import checkpoint
from shared.config import add_config_arguments, config_from_args
from shared.plotting import plot_history
from shared.runtime import seed_everything, set_threads
from shared.training import TrainConfig, Trainer

# The streaming families: arch -> (config, model). Checkpoints record the arch, so any of them loads.
STREAMING = {"mamba": (MambaConfig, MambaLM), "hybrid": (HybridConfig, HybridLM), "rwkv": (RWKVConfig, RWKVLM)}
ARCHS = (*STREAMING, "transformer")


@dataclass
class RecallRunConfig:
    arch: str = field(default="mamba", metadata={"help": "model family", "choices": ARCHS})
    pos_enc: str = field(default="learned", metadata={"help": "transformer positions: learned or rope"})
    export: str = field(default="", metadata={"help": "also write the inference checkpoint here"})
    threads: int = field(default=1, metadata={"help": "torch threads"})


def model_config_class(arch: str) -> type:
    """The config a family reads from the command line; the transformer takes --d-model, --n-layer and
    --n-head from the hybrid's (its block is the task's --max-seq-len)."""
    return STREAMING[arch][0] if arch in STREAMING else HybridConfig


def build_model(arch: str, model_cfg, task: RecallTaskConfig, pos_enc: str = "learned"):
    """The recall model: a streaming family, or month 1's GPT of the same width and depth (block size =
    the longest training length: learned positions stop there, RoPE runs on but was never trained further)."""
    if arch in STREAMING:
        return STREAMING[arch][1](model_cfg)
    gpt_cfg = GPTConfig(
        vocab_size=model_cfg.vocab_size, block_size=task.max_seq_len, n_layer=model_cfg.n_layer,
        n_head=model_cfg.n_head, n_embd=model_cfg.d_model, pos_enc=pos_enc, norm="rmsnorm", bias=False,
    )
    return GPT(gpt_cfg)


def train_recall(model_cfg, train_cfg: TrainConfig, task: RecallTaskConfig, run: RecallRunConfig):
    set_threads(run.threads)
    seed_everything(train_cfg.seed)  # the initial weights too, not only the data
    model = build_model(run.arch, model_cfg, task, run.pos_enc)
    batches = RecallBatches(task, train_cfg.max_steps)
    extra = {"arch": run.arch, "model_config": model.config_dict(), "task_config": asdict(task)}
    log: list[dict] = []

    def report(tr: Trainer) -> None:  # recall accuracy at each evaluation: the number that matters here
        if tr.history.eval_step and tr.history.eval_step[-1] == tr.step:
            length = batches.length_at(tr.step)
            result = evaluate_recall(tr.model, length, task, n_docs=16, chunk=length)
            tr.model.train()
            log.append({"step": tr.step, "seconds": tr.history.seconds, **result})
            print(f"[train-recall] step {tr.step} ({tr.history.seconds:.0f} s): val loss "
                  f"{tr.history.eval_val[-1]:.3f}, recall at {length} bytes {result['accuracy']:.3f} "
                  f"(digits {result['digit_accuracy']:.3f})", flush=True)

    trainer = Trainer(model, batches, train_cfg, callback=report, extra_state=extra)
    batches.train_step = trainer.step  # the curriculum continues where a resumed run stopped
    n_params = sum(p.numel() for p in model.parameters())
    print(f"[train-recall] {run.arch}: {n_params / 1e3:.0f}k params; step {trainer.step}/{train_cfg.max_steps}; "
          f"{task.seq_len}->{task.max_seq_len} bytes, {task.batch_tokens} bytes per batch", flush=True)
    start = time.perf_counter()
    history = trainer.fit()
    print(f"[train-recall] {trainer.step} steps; this run {time.perf_counter() - start:.0f} s, "
          f"all runs {history.seconds:.0f} s of training", flush=True)
    result = evaluate_recall(model, task.max_seq_len, task, n_docs=32, chunk=task.max_seq_len)
    print(f"[train-recall] recall at {task.max_seq_len} bytes: {result['accuracy']:.3f} "
          f"(digits {result['digit_accuracy']:.3f})", flush=True)
    if train_cfg.out_dir:
        out = Path(train_cfg.out_dir)
        plot_history(history, out / "loss.png", title=f"{run.arch} on the recall task")
        metrics = {"step": trainer.step, "train_seconds": history.seconds, **result}
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if run.export:
        export(model, run.arch, task, train_cfg, history.seconds, run.export)
        print(f"[train-recall] inference checkpoint {run.export}", flush=True)
    return model, trainer


def export(model, arch: str, task: RecallTaskConfig, train_cfg: TrainConfig, seconds: float, path: str) -> Path:
    state = {
        "arch": arch,
        "model": model.state_dict(),
        "model_config": model.config_dict(),
        "task_config": asdict(task),
        "train_config": asdict(train_cfg),
        "train_seconds": seconds,
    }
    return checkpoint.atomic_save(state, path)


def load_recall_model(path: str | Path):
    """(model in eval mode, task config) from an exported or a Trainer checkpoint."""
    state = checkpoint.load(path)
    task = RecallTaskConfig(**state["task_config"])
    arch = state.get("arch", "mamba")
    if arch in STREAMING:
        config_cls, model_cls = STREAMING[arch]
        model = model_cls(config_cls(**state["model_config"]))
    else:
        model = GPT(GPTConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    return model.eval(), task


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser.add_argument_group("run"), RecallRunConfig)
    add_config_arguments(parser.add_argument_group("task"), RecallTaskConfig)
    # A conv window of 8 bytes holds a whole `{key: v`: B and C can see the full key (README).
    add_config_arguments(parser.add_argument_group("model: Mamba, and the hybrid's Mamba layers; --vocab-size, "
                                                   "--d-model, --n-layer, --norm-eps, --tie-embeddings and "
                                                   "--chunk-size (its parallel WKV) also set RWKV"),
                         MambaConfig, defaults={"d_conv": 8})
    # attn_every 2: with the default 2 layers the hybrid is Mamba then attention (4 would be no attention at all).
    add_config_arguments(parser.add_argument_group("hybrid (--n-head also sets the transformer)"),
                         HybridConfig, defaults={"attn_every": 2}, exclude=MambaConfig)
    add_config_arguments(parser.add_argument_group("rwkv"), RWKVConfig, exclude=MambaConfig)
    add_config_arguments(parser.add_argument_group("training"), TrainConfig, defaults={
        "out_dir": "runs/month3_recall", "lr": 3e-3, "min_lr": 3e-4, "max_steps": 4000, "warmup_steps": 50,
        "eval_interval": 250, "eval_batches": 4, "ckpt_interval": 250, "weight_decay": 0.0})


def configs_from_args(args: argparse.Namespace) -> tuple:
    """(model config of the chosen family, train, task, run config): train_recall's arguments."""
    run = config_from_args(RecallRunConfig, args)
    return (config_from_args(model_config_class(run.arch), args), config_from_args(TrainConfig, args),
            config_from_args(RecallTaskConfig, args), run)


def main(args: argparse.Namespace) -> None:
    train_recall(*configs_from_args(args))
