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


@pytest.mark.parametrize("argv, message", [
    (["eval-toolcalls", "--n", "0"], "--n, --max-new-tokens and --batch-size must be at least 1"),
    (["finetune", "--r", "0"], "--r, --alpha, --batch-size, --max-length and --n-train must be at least 1"),
    (["finetune", "--max-steps", "-1"], "steps and intervals must be >= 0"),
    (["quantize", "--variants", "fp32,int3"], "--variants: unknown int3"),
    (["tokenizers", "--vocab-size", "100"], "--vocab-size must exceed the 256 byte tokens"),
    (["tokenizers", "--corpus", "no/such/file.txt"], "--corpus: 'no/such/file.txt' is neither a corpus name"),
    (["chat", "--max-new-tokens", "4096"], "--max-new-tokens 4096 must be at least 1 and smaller than"),
    (["finetune", "--config", "no_such_preset"], "--config no_such_preset: no such file"),
    (["eval-toolcalls", "--adapter", "no/such/adapter"], "not an adapter folder (no adapter_config.json): no/such"),
])
def test_user_errors_end_as_one_line_with_status_2(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_an_unknown_model_is_one_line(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no probe of the hub; restored afterwards
    for argv in (["inspect", "--model", "no-such/model"], ["eval-toolcalls", "--model", "no-such/model"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and "cannot load the model 'no-such/model'" in err, err
        assert len(err.strip().splitlines()) == 1


def test_booleans_are_written_true_or_false(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["eval-toolcalls", "--qlora"])  # a bool option takes a value; there are no bare flags
    assert exit_info.value.code == 2 and "expected one argument" in capsys.readouterr().err


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
