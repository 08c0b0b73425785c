"""Every subcommand of every month turns a user's mistake into one line and exit status 2.

A user's mistakes: a missing file, a file of the wrong kind, a checkpoint that could run code,
an option value out of range, a bad --config preset. Each month's own tests go through its
commands in depth; this one holds every month to the rule, and fails when a month adds a
subcommand without a case here.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from shared.grading import MONTHS

ROOT = Path(__file__).resolve().parent.parent


class _Exploit:
    def __reduce__(self):
        return (print, ("this ran",))


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad_input")
    (root / "junk.pt").write_bytes(b"\x00not a checkpoint")
    torch.save({"model": {}, "payload": _Exploit()}, root / "evil.pt")
    (root / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (root / "broken.toml").write_text("n_layer = [\n")
    (root / "typo.toml").write_text("n_layr = 2\n")
    return root


# (month, argv, what the one line must say); {bad} is the folder of bad files above.
CASES = [
    ("month1_transformer", ["train", "--data", "/nonexistent"], "neither a corpus name"),
    ("month1_transformer", ["train", "--data", "{bad}/latin1.txt"], "not UTF-8"),
    ("month1_transformer", ["train", "--n-embd", "30", "--n-head", "4"], "divisible"),
    ("month1_transformer", ["train", "--max-steps", "-1"], "must be >= 0"),
    ("month1_transformer", ["train", "--config", "{bad}/broken.toml"], "not valid TOML"),
    ("month1_transformer", ["train", "--config", "{bad}/typo.toml"], "unknown option"),
    ("month1_transformer", ["train", "--config", "no_such_preset"], "no such file"),
    ("month1_transformer", ["sample", "--ckpt", "/nonexistent.pt"], "No such file"),
    ("month1_transformer", ["sample", "--ckpt", "{bad}/junk.pt"], "not a"),
    ("month1_transformer", ["sample", "--ckpt", "{bad}/evil.pt"], "refused"),
    ("month1_transformer", ["sample", "--top-p", "2"], "top-p"),
    ("month2_llm_core", ["chat", "--max-new-tokens", "4096"], "must be at least 1 and smaller than"),
    ("month2_llm_core", ["tokenizers", "--corpus", "{bad}/latin1.txt"], "not UTF-8"),
    ("month2_llm_core", ["quantize", "--variants", "fp32,int3"], "unknown int3"),
    ("month2_llm_core", ["inspect", "--model", "{bad}"], "cannot load the model"),
    ("month2_llm_core", ["finetune", "--config", "{bad}/typo.toml"], "unknown option"),
    ("month2_llm_core", ["eval-toolcalls", "--adapter", "/no/such/adapter"], "not an adapter folder"),
    ("month3_mamba", ["read", "/nonexistent.txt"], "no such file"),
    ("month3_mamba", ["read", "{bad}/latin1.txt", "--ckpt", "{bad}/evil.pt"], "refused"),
    ("month3_mamba", ["make-doc", "{bad}/doc.txt", "--length", "-5"], "give at least"),
    ("month3_mamba", ["train-recall", "--arch", "rwkv", "--d-conv", "8"], "d-conv"),
    ("month3_mamba", ["eval-recall", "--ckpt", "{bad}/junk.pt"], "not a PyTorch checkpoint"),
    ("month4_moe", ["route", ""], "empty request"),
    ("month4_moe", ["route", "--router-dir", "{bad}", "hello"], "not a router folder"),
    ("month4_moe", ["train-experts", "--domains", "poetry"], "choose from code, math, text, chat"),
    ("month4_moe", ["train", "--top-k", "5"], "top_k must be between 1 and n_experts=4"),
    ("month4_moe", ["train", "--domains", "code,poetry"], "domains: unknown"),
    ("month4_moe", ["eval", "--ckpt", "{bad}/junk.pt"], "not a PyTorch checkpoint"),
    ("month4_moe", ["eval", "--ckpt", "{bad}/evil.pt"], "refused"),
    ("month4_moe", ["btx", "--n-experts", "8"], "--n-experts must be 4"),
    ("month4_moe", ["ds-train", "--ep-size", "3"], "must divide"),
    ("month4_moe", ["check", "--tokens", "2"], "tokens must be at least 8"),
    ("month5_rag", ["ingest", "/nonexistent", "--store-dir", "{bad}/store"], "no such file or folder"),
    ("month5_rag", ["ingest", "{bad}", "--collection", "a/b", "--store-dir", "{bad}/store"], "collection name"),
    ("month5_rag", ["ask", "hello?", "--collection", "nope", "--store-dir", "{bad}/store"], "no collection"),
    ("month5_rag", ["chat", "--k", "0", "--store-dir", "{bad}/store"], "at least 1"),
    ("month5_rag", ["list", "--files", "true", "--collection", "nope", "--store-dir", "{bad}/store"],
     "no collection"),
    ("month5_rag", ["delete", "x.pdf", "--collection", "nope", "--store-dir", "{bad}/store"], "no collection"),
    ("month5_rag", ["eval", "--limit", "-1"], "--limit must be >= 0"),
    ("month6_system", ["serve", "--port", "70000"], "port: Input should be less than or equal to 65535"),
    ("month6_system", ["demo", "--port", "-1"], "port: Input should be greater than or equal to 0"),
    ("month6_system", ["ingest", "/nonexistent", "--data-dir", "{bad}/m6"], "no such file or folder"),
    ("month6_system", ["ingest", "--data-dir", "{bad}/m6"], "nothing to ingest"),
    ("month6_system", ["keys", "revoke", "nobody", "--data-dir", "{bad}/m6"], "no live key named 'nobody'"),
    ("month6_system", ["serve-ray", "--replicas", "0"], "replica and thread counts must be positive"),
    ("month6_system", ["serve-ray", "--min-replicas", "3", "--max-replicas", "2"], "below min_replicas"),
]


def test_every_subcommand_has_a_case():
    covered = {(month, argv[0]) for month, argv, _ in CASES}
    for month in MONTHS:
        commands = getattr(importlib.import_module(f"{month}.__main__"), "COMMANDS", {})
        missing = sorted(name for name in commands if (month, name) not in covered)
        assert not missing, f"{month}: add bad-input cases for {missing}"


@pytest.mark.parametrize("month, argv, says", CASES, ids=[f"{m[:6]}-{' '.join(a)[:40]}" for m, a, _ in CASES])
def test_user_error_is_one_line(month, argv, says, bad, capsys):
    main = importlib.import_module(f"{month}.__main__").main
    argv = [a.replace("{bad}", str(bad)) for a in argv]
    with pytest.raises(SystemExit) as stop:
        main(argv)
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert stop.value.code == 2, out.err
    assert "Traceback" not in out.err and "this ran" not in out.out + out.err
    assert len(lines) == 1 or lines[0].startswith("usage:"), out.err  # argparse puts usage above its line
    assert says.lower() in lines[-1].lower(), lines[-1]


def test_no_traceback_in_a_real_process(bad):
    """The same as a user sees it: a fresh interpreter, stderr only, exit status 2."""
    result = subprocess.run([sys.executable, "-m", "month1_transformer", "sample", "--ckpt", str(bad / "evil.pt")],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "refused" in result.stderr
