"""Train the MoE language model with DeepSpeed's MoE layer through `deepspeed.initialize`.

    python -m month4_moe ds-train --max-steps 50                               # 1 process, CPU, gloo
    python -m month4_moe ds-train --ranks 2 --ep-size 2 --max-steps 50         # 2 local ranks, 2 experts each
    python -m month4_moe ds-train --ranks 1 --load runs/month4_ds/ds_ckpt      # resume at another ep size

On GPUs the same script scales with one rank per GPU and ep_size = number of GPUs (not run here):
    torchrun --nproc_per_node 8 -m month4_moe ds-train --ep-size 8 --n-experts 8 --device cuda

--ranks N starts N processes of this command with torch.distributed.run on 127.0.0.1 (a free port),
one thread each. The model is month 1's GPT with `deepspeed.moe.layer.MoE` as every feed-forward,
built from the same seeded weights as ours (month4_moe.lm.MoEGPT), so any ep_size starts from the same
model. A global step takes ranks x grad_accum micro-batches, micro-batch i of a step being the same
rows whoever computes it: 2 ranks at ep_size 2 train like 1 rank with --grad-accum 2 (tested).
Nothing is compiled: torch's AdamW is the optimizer, gloo the backend, and DeepSpeed's shared-memory
all-reduce op is switched off (its first use would JIT-compile C++ for minutes).

Writes OUT_DIR/losses.json (rank 0), OUT_DIR/ds_ckpt/ (DeepSpeed's checkpoint: one file per global
expert, so it loads at any ep_size) and, with --dump true, OUT_DIR/weights_rank{r}.pt: every weight the
rank holds, experts under their global number (what the tests compare across ep sizes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from month1_transformer.model import GPTConfig
from month4_moe.domains import DomainConfig, DomainData, make_domain_batches, tokenizer
from month4_moe.ds_moe import check_supported, copy_into_deepspeed, import_deepspeed
from month4_moe.layer import MoEConfig
from month4_moe.lm import MoEGPT
from shared.config import add_config_arguments, config_from_args
from shared.errors import UserError

DEVICES = ("cpu", "cuda")


@dataclass
class DSRunConfig:
    ranks: int = field(default=1, metadata={"help": "processes to start on this machine (1: run in this one)"})
    ep_size: int = field(default=1, metadata={"help": "expert-parallel size: ranks that share one set of experts"})
    micro_batch: int = field(default=8, metadata={"help": "sequences per rank per micro-step"})
    grad_accum: int = field(default=1, metadata={"help": "micro-steps per optimizer step"})
    max_steps: int = field(default=50, metadata={"help": "optimizer steps (0: only load / save / dump)"})
    lr: float = field(default=1e-3, metadata={"help": "AdamW learning rate (constant)"})
    grad_clip: float = field(default=0.0, metadata={"help": "DeepSpeed gradient clipping (0: off)"})
    seed: int = field(default=1337, metadata={"help": "seed of the initial weights and of the data"})
    out_dir: str = field(default="runs/month4_ds", metadata={"help": "losses, DeepSpeed checkpoint, dumps"})
    load: str = field(default="", metadata={"help": "a ds_ckpt folder to start from (written at any ep_size)"})
    save: bool = field(default=True, metadata={"help": "write OUT_DIR/ds_ckpt at the end"})
    dump: bool = field(default=False, metadata={"help": "write OUT_DIR/weights_rank{r}.pt at the end"})
    train_chars: int = field(default=100_000, metadata={"help": "training characters per domain"})
    threads: int = field(default=1, metadata={"help": "torch threads per rank"})
    device: str = field(default="cpu", metadata={"help": "cpu (gloo) or cuda (nccl, one GPU per rank)",
                                                 "choices": DEVICES})
    progress: bool = field(default=True, metadata={"help": "show a progress bar (rank 0)"})

    def __post_init__(self) -> None:
        low = [n for n in ("ranks", "ep_size", "micro_batch", "grad_accum", "threads") if getattr(self, n) < 1]
        if low or self.max_steps < 0:
            raise ValueError(f"{', '.join(low) or 'max_steps'} must be at least {1 if low else 0}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")


# The model of the DeepSpeed runs: small enough that 2 ranks on 1 core each finish in seconds.
DS_MODEL = {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32, "bias": False}
DS_MOE = {"z_loss_coef": 0.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_argv(*configs) -> list[str]:
    """The command-line options that rebuild these configs (for the launched ranks)."""
    argv = []
    for cfg in configs:
        for f in dataclasses.fields(cfg):
            if f.metadata.get("derived"):
                continue
            argv += ["--" + f.name.replace("_", "-"), str(getattr(cfg, f.name))]
    return argv


def launch(run: DSRunConfig, gpt: GPTConfig, moe: MoEConfig) -> None:
    """Start run.ranks copies of this command with torch.distributed.run on loopback and wait."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(run.ranks), "--nnodes", "1",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "-m", "month4_moe", "ds-train",
           *as_argv(run, gpt, moe)]
    env = {**os.environ, "OMP_NUM_THREADS": str(run.threads), "HYBRID_AI_THREADS": str(run.threads)}
    if run.device == "cpu":
        env.setdefault("DS_ACCELERATOR", "cpu")
    result = subprocess.run(cmd, env=env)
    if result.returncode:
        raise UserError(f"the {run.ranks} ranks failed (exit status {result.returncode}); see their output above")


def distributed_setup(run: DSRunConfig):
    """torch.distributed with gloo (or nccl), before DeepSpeed sees it; returns deepspeed."""
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    if "MASTER_PORT" not in os.environ:
        os.environ["MASTER_PORT"] = str(free_port())
    import_deepspeed()
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False  # gloo's all-reduce; nothing to compile
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if run.device == "cuda" else "gloo")
    return deepspeed


def build_model(gpt: GPTConfig, moe: MoEConfig, run: DSRunConfig) -> MoEGPT:
    """DeepSpeed's MoE model with the weights of our seeded model: dense weights as they are, and this
    rank's experts (ep_rank * local ... ) from the global ones."""
    torch.manual_seed(run.seed)
    reference = MoEGPT(gpt, moe)
    model = MoEGPT(gpt, moe, layer="deepspeed", ep_size=run.ep_size)
    dense = {k: v for k, v in reference.state_dict().items() if ".mlp." not in k}
    missing, unexpected = model.load_state_dict(dense, strict=False)
    assert not unexpected and all(".mlp." in k for k in missing), (missing, unexpected)
    local = moe.n_experts // run.ep_size
    first = (torch.distributed.get_rank() % run.ep_size) * local  # DeepSpeed's groups: consecutive ranks
    for ours, theirs in zip(reference.moe_layers(), model.moe_layers()):
        copy_into_deepspeed(ours, theirs, first_expert=first)
    return model


def global_weights(model: MoEGPT, ep_size: int) -> dict[str, torch.Tensor]:
    """This rank's weights, experts named by their global number: blocks.L.mlp.experts.G.<param>."""
    from deepspeed.utils import groups

    out = {k: v.detach().clone() for k, v in model.state_dict().items() if ".deepspeed_experts." not in k}
    for layer, mlp in enumerate(model.moe_layers()):
        name = mlp.moe.expert_group_name
        assert groups._get_expert_parallel_world_size(name) == ep_size
        first = groups._get_expert_parallel_rank(name) * len(mlp.local_experts)
        for i, expert in enumerate(mlp.local_experts):
            for k, v in expert.state_dict().items():
                out[f"blocks.{layer}.mlp.experts.{first + i}.{k}"] = v.detach().clone()
    return out


def check_loadable(path: Path, gpt: GPTConfig, moe: MoEConfig) -> None:
    meta = path / "month4.json"
    if not meta.is_file():
        raise UserError(f"--load {path}: not a ds-train checkpoint folder (no month4.json in it)")
    saved = json.loads(meta.read_text())
    if saved["moe_config"]["n_experts"] != moe.n_experts:
        n = saved["moe_config"]["n_experts"]
        raise UserError(f"--load {path}: the checkpoint has {n} experts per layer, these options build "
                        f"{moe.n_experts}; pass --n-experts {n}")
    if saved["model_config"] != asdict(gpt):
        raise UserError(f"--load {path}: the checkpoint's model options differ from these: {saved['model_config']}")


def ds_train(run: DSRunConfig, gpt: GPTConfig, moe: MoEConfig) -> dict | None:
    check_supported(moe)
    if moe.n_experts % run.ep_size or run.ranks % run.ep_size:
        raise UserError(f"--ep-size {run.ep_size} must divide --n-experts ({moe.n_experts}) and --ranks ({run.ranks})")
    gpt.vocab_size = tokenizer().vocab_size
    if run.load:
        check_loadable(Path(run.load), gpt, moe)
    if run.ranks > 1 and "LOCAL_RANK" not in os.environ:
        launch(run, gpt, moe)
        return None
    start = time.perf_counter()
    torch.set_num_threads(run.threads)
    deepspeed = distributed_setup(run)
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    if world % run.ep_size:
        raise UserError(f"--ep-size {run.ep_size} must divide the number of ranks ({world})")
    if run.device == "cuda":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    model = build_model(gpt, moe, run)
    device = torch.device("cuda", torch.cuda.current_device()) if run.device == "cuda" else torch.device("cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=run.lr, weight_decay=0.0)
    config = {"train_micro_batch_size_per_gpu": run.micro_batch, "gradient_accumulation_steps": run.grad_accum,
              "zero_optimization": {"stage": 0}, "gradient_clipping": run.grad_clip, "steps_per_print": 10**9}
    init_start = time.perf_counter()
    engine, _, _, _ = deepspeed.initialize(model=model.to(device), optimizer=optimizer, config=config)
    init_seconds = time.perf_counter() - init_start
    if run.load:
        engine.load_checkpoint(run.load, tag="final", load_optimizer_states=False, load_lr_scheduler_states=False)
    micro_total = world * run.grad_accum
    if run.max_steps:  # (a load / save / dump run needs no data)
        data = DomainData.build(DomainConfig(train_chars=run.train_chars, eval_chars=5000), splits=("train", "val"))
        get_batch = make_domain_batches(data, DomainConfig().domain_list(), gpt.block_size,
                                        micro_total * run.micro_batch)
    losses, aux = [], []
    bar = tqdm(total=run.max_steps, disable=rank != 0 or not run.progress, desc=f"ds-train ep={run.ep_size}")
    train_start = time.perf_counter()
    for step in range(run.max_steps):
        x, y = get_batch("train", torch.Generator().manual_seed(run.seed * 100_003 + step))  # the global batch
        step_loss = step_aux = torch.zeros((), device=device)
        for a in range(run.grad_accum):
            i = a * world + rank  # this rank's micro-batch: the same rows whatever the split of the work
            rows = slice(i * run.micro_batch, (i + 1) * run.micro_batch)
            _, ce = engine(x[rows].to(device), y[rows].to(device))
            l_aux = engine.module.aux_loss()
            engine.backward(ce + l_aux)
            engine.step()
            step_loss, step_aux = step_loss + ce.detach(), step_aux + l_aux.detach()
        total = torch.stack([step_loss, step_aux])
        torch.distributed.all_reduce(total)
        losses.append(float(total[0]) / micro_total)
        aux.append(float(total[1]) / micro_total)
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.close()
    train_seconds = time.perf_counter() - train_start
    out = Path(run.out_dir)
    if run.save:
        engine.save_checkpoint(str(out / "ds_ckpt"), tag="final")
        if rank == 0:
            (out / "ds_ckpt" / "month4.json").write_text(json.dumps(
                {"model_config": asdict(gpt), "moe_config": asdict(moe), "ep_size": run.ep_size}))
    if run.dump:
        torch.save(global_weights(engine.module, run.ep_size), out / f"weights_rank{rank}.pt")
    result = {"ranks": world, "ep_size": run.ep_size, "grad_accum": run.grad_accum, "losses": losses, "aux": aux,
              "init_seconds": init_seconds, "train_seconds": train_seconds,
              "seconds_per_step": train_seconds / run.max_steps if run.max_steps else None,
              "process_seconds": time.perf_counter() - start, "threads": run.threads}
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "losses.json").write_text(json.dumps(result, indent=2))
        last = f"loss {losses[0]:.4f} -> {losses[-1]:.4f}" if losses else "no steps"
        print(f"[ds-train] {world} rank(s), ep_size {run.ep_size}: {run.max_steps} steps, {last}; "
              f"deepspeed.initialize {init_seconds:.2f} s, {train_seconds:.1f} s of steps; {out / 'losses.json'}",
              flush=True)
    torch.distributed.barrier()
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser.add_argument_group("run"), DSRunConfig)
    add_config_arguments(parser.add_argument_group("model (month 1's GPTConfig)"), GPTConfig, defaults=DS_MODEL)
    add_config_arguments(parser.add_argument_group("moe (DeepSpeed's gate: top-1/2, capacity, dropless)"), MoEConfig,
                         defaults=DS_MOE)


def main(args: argparse.Namespace) -> None:
    ds_train(config_from_args(DSRunConfig, args), config_from_args(GPTConfig, args), config_from_args(MoEConfig, args))
