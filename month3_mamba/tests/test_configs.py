"""train-recall's configs: with no flags each family gets its own config class's defaults (the ones
--help lists), and each preset in month3_mamba/configs/ is exactly the run behind the README's figures."""

import re
from dataclasses import asdict, fields, replace
from pathlib import Path

import pytest
import torch

import month3_mamba.train_recall as train_recall_module
from month3_mamba.__main__ import main
from month3_mamba.families import ARCHS, CONFIGS, MEMORY_CKPT, build_model
from month3_mamba.read import DEFAULT_CKPT
from month3_mamba.recall import RecallTaskConfig
from month3_mamba.train_recall import RECALL_TRAINING, RecallRunConfig, family_help
from shared.training import TrainConfig

PRESETS = Path(train_recall_module.__file__).parent / "configs"

# The train-recall commands the README gave for each run before the presets (the runs' record).
README_COMMANDS = {
    "recall_phase1": "--d-conv 8 --max-steps 4000 --lr 3e-3 --min-lr 3e-4 --eval-interval 250 --eval-batches 4 "
                     "--ckpt-interval 250 --out-dir runs/month3_recall --export month3_mamba/checkpoints/recall.pt",
    "recall_phase2": "--d-conv 8 --max-steps 4600 --max-seq-len 2048 --batch-tokens 4096 --lr 3e-3 --min-lr 3e-4 "
                     "--eval-interval 200 --eval-batches 2 --ckpt-interval 100 --out-dir runs/month3_recall "
                     "--export month3_mamba/checkpoints/recall.pt",
    "recall_phase3": "--d-conv 8 --max-steps 4900 --max-seq-len 8192 --batch-tokens 8192 --lr 3e-3 --min-lr 3e-4 "
                     "--eval-interval 100 --eval-batches 1 --ckpt-interval 50 --out-dir runs/month3_recall_phase3 "
                     "--export runs/month3_recall_phase3/recall.pt",
    "recall_hybrid_phase1": "--arch hybrid --n-layer 3 --attn-every 3 --d-conv 8 --max-steps 4000 --lr 3e-3 "
                            "--min-lr 3e-4 --eval-interval 250 --eval-batches 4 --ckpt-interval 250 "
                            "--out-dir runs/month3_recall_hybrid --export runs/month3_recall_hybrid/recall.pt",
    "recall_hybrid_phase2": "--arch hybrid --n-layer 3 --attn-every 3 --d-conv 8 --max-steps 4600 --max-seq-len 2048 "
                            "--batch-tokens 4096 --lr 3e-3 --min-lr 3e-4 --eval-interval 200 --eval-batches 2 "
                            "--ckpt-interval 100 --out-dir runs/month3_recall_hybrid "
                            "--export runs/month3_recall_hybrid/recall.pt",
    # RWKV's --chunk-size was then Mamba's option, default 32.
    "recall_rwkv_phase1": "--arch rwkv --ffn-mult 2 --chunk-size 32 --max-steps 4000 --lr 3e-3 --min-lr 3e-4 "
                          "--eval-interval 250 --eval-batches 4 --ckpt-interval 250 --out-dir runs/month3_recall_rwkv "
                          "--export runs/month3_recall_rwkv/recall.pt",
    "recall_rwkv_phase2": "--arch rwkv --ffn-mult 2 --chunk-size 32 --max-steps 4600 --max-seq-len 2048 "
                          "--batch-tokens 4096 --lr 3e-3 --min-lr 3e-4 --eval-interval 200 --eval-batches 2 "
                          "--ckpt-interval 100 --out-dir runs/month3_recall_rwkv "
                          "--export runs/month3_recall_rwkv/recall.pt",
    "recall_transformer": "--arch transformer --pos-enc rope --resume false --lr 1e-3 --min-lr 1e-4 --warmup-steps 500 "
                          "--max-steps 16000 --seq-len 48 --max-seq-len 256 --eval-interval 2000 --eval-batches 2 "
                          "--ckpt-interval 2000 --out-dir runs/month3_recall_gpt_rope_tuned",
}
MEMORY = ("--format sentences --corpus train-mix --questions independent --n-facts 16 "
          "--seq-len 80 --max-seq-len 2048 --batch-tokens 4096 --max-steps 5000 --lr 3e-3 --min-lr 3e-4 "
          "--eval-interval 250 --eval-batches 2 --ckpt-interval 100 ")
MAMBA = "--d-conv 8 --scan fused "
README_COMMANDS |= {
    "memory_phase1": "--d-state 32 " + MAMBA + MEMORY + "--out-dir runs/month3_memory "
                     "--export runs/month3_memory/phase1.pt",
    "memory_hybrid_phase1": "--arch hybrid --n-layer 3 --attn-every 3 --window 32 --d-state 32 " + MAMBA + MEMORY +
                            "--out-dir runs/month3_memory_hybrid --export runs/month3_memory_hybrid/phase1.pt",
    "memory_rwkv_phase1": "--arch rwkv --ffn-mult 2 --chunk-size 32 " + MEMORY +
                          "--out-dir runs/month3_memory_rwkv --export runs/month3_memory_rwkv/phase1.pt",
    "memory_delta_phase1": "--arch delta --d-state 32 " + MAMBA + MEMORY +
                           "--out-dir runs/month3_memory_delta --export runs/month3_memory_delta/phase1.pt",
    "memory_delta_phase2": "--arch delta --d-state 32 " + MAMBA + "--format sentences --corpus train-mix "
                           "--questions independent --n-facts 16 --seq-len 80 --max-seq-len 8192 --batch-tokens 16384 "
                           "--max-steps 5600 --lr 3e-3 --min-lr 3e-4 --eval-interval 250 --eval-batches 2 "
                           "--ckpt-interval 50 --out-dir runs/month3_memory_delta "
                           "--export runs/month3_memory_delta/phase2.pt",
    "memory_delta_phase3": "--arch delta --d-state 32 " + MAMBA + "--format sentences --corpus train-mix "
                           "--questions independent --untold 0.25 --n-facts 16 --seq-len 80 --max-seq-len 16384 "
                           "--batch-tokens 16384 --max-steps 6800 --lr 3e-3 --min-lr 3e-4 --eval-interval 300 "
                           "--eval-batches 2 --ckpt-interval 50 --out-dir runs/month3_memory_delta "
                           "--export runs/month3_memory_delta/phase3.pt",
    "memory_delta_phase4": "--arch delta --d-state 32 " + MAMBA + "--format sentences --corpus train-mix "
                           "--questions independent --untold 0.25 --untold-close 0.5 --n-facts 16 --seq-len 80 "
                           "--max-seq-len 32768 --batch-tokens 32768 --max-steps 7600 --lr 3e-3 --min-lr 3e-4 "
                           "--eval-interval 250 --eval-batches 2 --ckpt-interval 25 --out-dir runs/month3_memory_delta "
                           "--export runs/month3_memory_delta/phase4.pt",
}
# The wide reader: the delta presets with 2 heads of 64 x 64 instead of 4 of 32 x 32, in a folder of its own.
README_COMMANDS |= {
    f"memory_delta_wide_phase{i}": README_COMMANDS[f"memory_delta_phase{i}"]
    .replace("--arch delta", "--arch delta --n-head 2")
    .replace("runs/month3_memory_delta", "runs/month3_memory_delta_wide")
    for i in (1, 2, 3)
}
# Parameter counts in the README's tables: per family, and where a preset's model is not its family's usual size.
README_PARAMS = {"mamba": 82_880, "hybrid": 99_328, "rwkv": 91_584, "delta": 92_388, "transformer": 115_008,
                 "memory_phase1": 95_168, "memory_hybrid_phase1": 111_616, "memory_delta_phase1": 100_580,
                 "memory_delta_phase2": 100_580, "memory_delta_phase3": 100_580,
                 "memory_delta_phase4": 100_580, "memory_delta_wide_phase1": 100_482,
                 "memory_delta_wide_phase2": 100_482, "memory_delta_wide_phase3": 100_482}


@pytest.fixture
def parsed(monkeypatch):
    """`train-recall ARGS` through the real command line, stopped before training: its four configs."""
    calls = []
    monkeypatch.setattr(train_recall_module, "train_recall", lambda *configs: calls.append(configs))

    def parse(*argv: str) -> tuple:
        main(["train-recall", *argv])
        return calls[-1]

    return parse


@pytest.mark.parametrize("arch", ARCHS)
def test_no_flags_gives_the_familys_own_defaults(arch, parsed):
    model, train, task, run = parsed("--arch", arch)
    assert model == CONFIGS[arch]() and task == RecallTaskConfig() and run == RecallRunConfig(arch=arch)
    assert train == replace(TrainConfig(), **RECALL_TRAINING)


@pytest.mark.parametrize("arch", ARCHS)
def test_help_lists_each_familys_defaults(arch):
    for f in fields(CONFIGS[arch]):  # "... (mamba, hybrid; default: 4)"
        pattern = rf"\([a-z, ]*\b{arch}\b[a-z, ]*; default: {re.escape(str(f.default))}\)"
        assert re.search(pattern, family_help(f.name)), (f.name, family_help(f.name))


def test_an_option_of_another_family_is_refused(parsed, capsys):
    with pytest.raises(SystemExit) as stop:
        parsed("--arch", "rwkv", "--d-conv", "8")
    assert stop.value.code == 2 and "--arch rwkv has no option --d-conv" in capsys.readouterr().err


def test_every_preset_is_tested():
    assert sorted(p.stem for p in PRESETS.glob("*.toml")) == sorted(README_COMMANDS)


@pytest.mark.parametrize("name", README_COMMANDS)
def test_preset_is_the_readme_run(name, parsed):
    preset = parsed("--config", name)
    assert preset == parsed(*README_COMMANDS[name].split())
    model, _, task, run = preset
    n_params = sum(p.numel() for p in build_model(run.arch, model, task).parameters())
    assert n_params == README_PARAMS.get(name, README_PARAMS[run.arch])


def test_phase2_preset_is_what_the_committed_checkpoint_records(parsed):
    model, train, task, run = parsed("--config", "recall_phase2")
    state = torch.load(DEFAULT_CKPT, weights_only=True)
    assert state["arch"] == run.arch and run.export == "month3_mamba/checkpoints/recall.pt"
    assert state["model_config"] == asdict(model)
    # Task options added since (format, corpus, questions) stand at their defaults: the first task.
    assert state["task_config"] == {k: v for k, v in asdict(task).items() if k in state["task_config"]}
    assert asdict(task).keys() - state["task_config"].keys() == {"format", "corpus", "questions", "untold",
                                                                 "untold_close"}
    assert task == RecallTaskConfig(**state["task_config"])
    recorded, now = state["train_config"], asdict(train)
    assert {k: now[k] for k in recorded if k != "progress"} == {k: v for k, v in recorded.items() if k != "progress"}
    # The progress bar changes no number; options TrainConfig gained since the run stand at their defaults.
    assert all(now[k] == getattr(TrainConfig(), k) for k in now.keys() - recorded.keys())


def test_the_memory_presets_are_what_the_shipped_memory_reader_records(parsed):
    model, train, task, run = parsed("--config", "memory_delta_phase3")  # phase 3 resumes phase 2's run, 2 phase 1's
    state = torch.load(MEMORY_CKPT, weights_only=True)
    assert state["arch"] == run.arch == "delta"
    assert state["model_config"] == asdict(model)
    # untold_close came after the run: at its default (no close keys), the task is the one recorded
    assert asdict(task).keys() - state["task_config"].keys() == {"untold_close"} and task.untold_close == 0
    assert task == RecallTaskConfig(**state["task_config"])
    assert {k: v for k, v in state["train_config"].items() if k != "progress"} == \
        {k: v for k, v in asdict(train).items() if k != "progress"}
    for other in ("memory_delta_phase1", "memory_delta_phase2", "memory_delta_phase4"):  # 4: measured, not shipped
        phase = parsed("--config", other)
        assert phase[0] == model and phase[1].out_dir == train.out_dir  # the same model, resumed in one folder
        assert (phase[1].max_steps < train.max_steps) == (other != "memory_delta_phase4")
