"""python -m month2_llm_core: the subcommands, lazy imports, clear messages."""

import subprocess
import sys

import pytest

from month2_llm_core import __main__ as cli


def test_help_lists_every_subcommand():
    proc = subprocess.run([sys.executable, "-m", "month2_llm_core", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    for name in ("chat", "tokenizers", "quantize", "inspect", "finetune", "eval-toolcalls"):
        assert name in proc.stdout


def test_subcommand_help_comes_from_its_module(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["quantize", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: python -m month2_llm_core quantize" in out and "--ppl-tokens" in out


def test_a_missing_module_is_reported_clearly(monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "finetune", ("month2_llm_core.not_written_yet", "add_arguments", "main", ""))
    with pytest.raises(SystemExit, match="not available in this checkout"):
        cli.main(["finetune", "--help"])


@pytest.mark.model
def test_tokenizers_report(capsys):
    cli.main(["tokenizers", "--train-chars", "30000", "--vocab-size", "320", "--eval-chars", "5000"])
    out = capsys.readouterr().out
    assert "merges compared: 64" in out and "characters per token" in out and "[<|im_start|>]" in out


@pytest.mark.model
def test_inspect_prints_the_model_summary(capsys):
    cli.main(["inspect"])
    out = capsys.readouterr().out
    assert "LlamaForCausalLM" in out and "134,515,008" in out
