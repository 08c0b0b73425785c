"""Train a small byte-level model on the long-document recall task (recall.py), on CPU.

    python -m month3_mamba train-recall --config recall_phase1     # the committed reader's phase 1
    python -m month3_mamba train-recall --config recall_phase2     # ... and phase 2 (resumes phase 1)
    python -m month3_mamba train-recall --arch rwkv --ffn-mult 2 --out-dir runs/month3_recall_rwkv

Training runs at short lengths (a curriculum from --seq-len to --max-seq-len bytes); the
Trainer checkpoints to --out-dir, so an interrupted run resumes where it stopped. --export
writes the small inference checkpoint (weights, configs, no optimizer) the reader loads.
Each --arch takes the model options its own config class has, with that class's defaults;
the presets in month3_mamba/configs/ are the recipes behind the README's figures.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from torch import nn

from month3_mamba.checks import require_at_least
from month3_mamba.delta import DeltaConfig
from month3_mamba.families import ARCHS, CONFIGS, TransformerConfig, build_model, export, read_checkpoint
from month3_mamba.hybrid import HybridConfig
from month3_mamba.model import MambaConfig
from month3_mamba.recall import RecallBatches, RecallTaskConfig, evaluate_recall, independent_loss, untold_note
from month3_mamba.rwkv import RWKVConfig
from shared.config import add_config_arguments, config_from_args
from shared.errors import UserError
from shared.plotting import plot_history
from shared.runtime import seed_everything, set_threads
from shared.training import TrainConfig, Trainer, default_loss


@dataclass
class RecallRunConfig:
    arch: str = field(default="mamba", metadata={"help": "model family; its options are in the model group",
                                                 "choices": ARCHS})
    export: str = field(default="", metadata={"help": "also write the inference checkpoint here"})
    threads: int = field(default=1, metadata={"help": "torch threads"})

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        require_at_least(self, 1, "threads")


# train-recall's training settings where they differ from TrainConfig's generic defaults (every family).
RECALL_TRAINING = {"out_dir": "runs/month3_recall", "lr": 3e-3, "min_lr": 3e-4, "max_steps": 4000, "warmup_steps": 50,
                   "eval_interval": 250, "eval_batches": 4, "ckpt_interval": 250, "weight_decay": 0.0}
UNTOLD_PER_DOC = 4  # keys never stated, asked per evaluation document when the task trains untold questions
# Every model option of any family.
MODEL_FIELDS = {f.name for cls in CONFIGS.values() for f in fields(cls)}


def train_recall(model_cfg, train_cfg: TrainConfig, task: RecallTaskConfig, run: RecallRunConfig):
    set_threads(run.threads)
    seed_everything(train_cfg.seed)  # the initial weights too, not only the data
    model = build_model(run.arch, model_cfg, task)
    check_resumable(model, run.arch, train_cfg)
    batches = RecallBatches(task, train_cfg.max_steps)
    extra = {"arch": run.arch, "model_config": model.config_dict(), "task_config": asdict(task)}
    log: list[dict] = []

    questions = task.questions  # scored the way it is trained (sequential for the first reader's runs)
    untold = UNTOLD_PER_DOC if task.untold else 0

    def report(tr: Trainer) -> None:  # recall accuracy at each evaluation: the number that matters here
        if tr.history.eval_step and tr.history.eval_step[-1] == tr.step:
            length = batches.length_at(tr.step)
            result = evaluate_recall(tr.model, length, task, n_docs=16, chunk=length, questions=questions,
                                     untold=untold)
            tr.model.train()
            log.append({"step": tr.step, "seconds": tr.history.seconds, **result})
            print(f"[train-recall] step {tr.step} ({tr.history.seconds:.0f} s): val loss "
                  f"{tr.history.eval_val[-1]:.3f}, recall at {length} bytes {result['accuracy']:.3f} "
                  f"(bytes {result['byte_accuracy']:.3f}){untold_note(result)}", flush=True)

    loss_fn = independent_loss if task.questions == "independent" else default_loss
    trainer = Trainer(model, batches, train_cfg, loss_fn=loss_fn, callback=report, extra_state=extra)
    batches.train_step = trainer.step  # the curriculum continues where a resumed run stopped
    n_params = sum(p.numel() for p in model.parameters())
    print(f"[train-recall] {run.arch}: {n_params / 1e3:.0f}k params; step {trainer.step}/{train_cfg.max_steps}; "
          f"{task.seq_len}->{task.max_seq_len} bytes, {task.batch_tokens} bytes per batch", flush=True)
    start = time.perf_counter()
    history = trainer.fit()
    print(f"[train-recall] {trainer.step} steps; this run {time.perf_counter() - start:.0f} s, "
          f"all runs {history.seconds:.0f} s of training", flush=True)
    result = evaluate_recall(model, task.max_seq_len, task, n_docs=32, chunk=task.max_seq_len, questions=questions,
                             untold=untold)
    print(f"[train-recall] recall at {task.max_seq_len} bytes ({questions} questions): {result['accuracy']:.3f} "
          f"(bytes {result['byte_accuracy']:.3f}){untold_note(result)}", flush=True)
    if train_cfg.out_dir:
        out = Path(train_cfg.out_dir)
        plot_history(history, out / "loss.png", title=f"{run.arch} on the recall task")
        metrics = {"step": trainer.step, "train_seconds": history.seconds, **result}
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if run.export:
        export(model, run.arch, task, train_cfg, history.seconds, run.export)
        print(f"[train-recall] inference checkpoint {run.export}", flush=True)
    return model, trainer


def check_resumable(model: nn.Module, arch: str, train_cfg: TrainConfig) -> None:
    """A resume file in --out-dir must hold this family at these sizes (the Trainer would fail halfway
    through loading it otherwise)."""
    path = Path(train_cfg.out_dir) / "ckpt.pt"  # the Trainer's resume file
    if not (train_cfg.out_dir and train_cfg.resume and path.is_file()):
        return
    state = read_checkpoint(path)
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    if state["arch"] != arch or {name: tuple(t.shape) for name, t in state["model"].items()} != shapes:
        raise UserError(f"{path} holds a {state['arch']} model that these options do not build: resume it with "
                        "the options it was started with, or start anew with another --out-dir or --resume false")


def family_help(name: str) -> str:
    """`--name`'s help: what it means in each family that has it, and its default there."""
    meanings: dict[tuple[str, object], list[str]] = {}
    for arch, cls in CONFIGS.items():
        for f in fields(cls):
            if f.name == name:
                meanings.setdefault((f.metadata.get("help", name), f.default), []).append(arch)
    return "; ".join(f"{text} ({', '.join(archs)}; default: {default})" for (text, default), archs in meanings.items())


def add_model_arguments(group: argparse._ArgumentGroup) -> None:
    """One option per field of any family's config. Unset options stay out of the namespace, so the
    chosen family's config class supplies its own defaults (the ones --help lists)."""
    add_config_arguments(group, HybridConfig)  # Mamba's fields and the hybrid's
    add_config_arguments(group, RWKVConfig, exclude=MambaConfig)
    add_config_arguments(group, DeltaConfig, exclude=HybridConfig)
    add_config_arguments(group, TransformerConfig, exclude=HybridConfig)
    for action in group._group_actions:
        action.default = argparse.SUPPRESS
        action.help = family_help(action.dest)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser.add_argument_group("run"), RecallRunConfig)
    add_config_arguments(parser.add_argument_group("task"), RecallTaskConfig)
    add_model_arguments(parser.add_argument_group("model", (
        "Each --arch reads the options of its own config class (mamba: MambaConfig, hybrid: HybridConfig,\n"
        "rwkv: RWKVConfig, delta: DeltaConfig, transformer: TransformerConfig); an option left out takes\n"
        "that class's default.")))
    add_config_arguments(parser.add_argument_group("training"), TrainConfig, defaults=RECALL_TRAINING)


def configs_from_args(args: argparse.Namespace) -> tuple:
    """(model config of the chosen family, train, task, run config): train_recall's arguments."""
    run = config_from_args(RecallRunConfig, args)
    model_cls = CONFIGS[run.arch]
    foreign = sorted((MODEL_FIELDS - {f.name for f in fields(model_cls)}) & set(vars(args)))
    if foreign:
        options = ", ".join("--" + name.replace("_", "-") for name in foreign)
        raise UserError(f"--arch {run.arch} has no option {options} (its options: the model group of --help)")
    return (config_from_args(model_cls, args), config_from_args(TrainConfig, args),
            config_from_args(RecallTaskConfig, args), run)


def main(args: argparse.Namespace) -> None:
    train_recall(*configs_from_args(args))
