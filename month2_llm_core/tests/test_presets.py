"""The fine-tuning presets (month2_llm_core/configs/) give exactly the runs the README's figures come from."""

import json
from dataclasses import asdict

import pytest

from month2_llm_core import __main__ as cli
from month2_llm_core import finetune as ft
from month2_llm_core.toolcall_model import ADAPTER_DIR
from shared.config import config_from_args
from shared.training import TrainConfig


def parsed(monkeypatch, *argv: str) -> tuple[ft.FinetuneConfig, TrainConfig]:
    """The configs `python -m month2_llm_core finetune ARGV` would train with (through the real CLI parser)."""
    seen = []
    monkeypatch.setattr(ft, "main", seen.append)
    cli.main(["finetune", *argv])
    return config_from_args(ft.FinetuneConfig, seen[0]), config_from_args(TrainConfig, seen[0])


def test_the_lora_preset_is_the_committed_adapters_run(monkeypatch):
    recorded = json.loads((ADAPTER_DIR / "metrics.json").read_text())
    cfg, train_cfg = parsed(monkeypatch, "--config", "toolcall_lora")
    options = asdict(cfg)
    assert {k: options[k] for k in recorded["finetune_config"]} == recorded["finetune_config"]
    # The options added after that run; the run had no gradient checkpointing and the built-in data.
    assert set(options) - set(recorded["finetune_config"]) == {"gradient_checkpointing", "data"}
    assert cfg.gradient_checkpointing is False and cfg.data == "builtin"
    loop = asdict(train_cfg)
    assert {k: loop[k] for k in recorded["train_config"]} == recorded["train_config"]
    # Not recorded: the progress bar (display only), and the precision option added after the run (fp32 then).
    assert set(loop) - set(recorded["train_config"]) == {"progress", "precision"}
    assert train_cfg.precision == "fp32"
    assert ft.command_line(cfg, train_cfg) == recorded["command"]


def test_the_qlora_preset_changes_only_the_base_and_the_folders(monkeypatch):
    lora = [asdict(c) for c in parsed(monkeypatch, "--config", "toolcall_lora")]
    qlora = [asdict(c) for c in parsed(monkeypatch, "--config", "toolcall_qlora")]
    changed = {k: v for old, new in zip(lora, qlora) for k, v in new.items() if old[k] != v}
    assert changed == {"qlora": True, "adapter_dir": "runs/month2/toolcall-qlora/adapter",
                       "out_dir": "runs/month2/toolcall-qlora"}


def test_flags_after_a_preset_override_it(monkeypatch):
    cfg, train_cfg = parsed(monkeypatch, "--config", "toolcall_lora", "--max-steps", "20", "--eval-n", "20")
    assert (train_cfg.max_steps, cfg.eval_n, cfg.r) == (20, 20, 8)


def test_finetune_help_lists_the_presets(capsys):
    with pytest.raises(SystemExit):
        cli.main(["finetune", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines at the terminal width
    assert "presets: toolcall_lora, toolcall_mixed, toolcall_qlora" in help_text


def test_the_mixed_preset_changes_only_the_data_the_schedule_and_the_folders(monkeypatch):
    lora = [asdict(c) for c in parsed(monkeypatch, "--config", "toolcall_lora")]
    mixed = [asdict(c) for c in parsed(monkeypatch, "--config", "toolcall_mixed")]
    changed = {k: v for old, new in zip(lora, mixed) for k, v in new.items() if old[k] != v}
    assert changed == {"data": "mixed", "n_train": 900, "max_steps": 450, "warmup_steps": 20, "eval_interval": 150,
                       "ckpt_interval": 25,
                       "adapter_dir": "month2_llm_core/adapters/toolcall-mixed-lora",
                       "out_dir": "runs/month2/toolcall-mixed", "eval_n": 36, "eval_base": False}
