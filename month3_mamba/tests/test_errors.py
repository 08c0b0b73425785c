"""A user's mistake ends every month-3 command with exit status 2 and one line saying what is wrong,
never a traceback: missing or unreadable files, files of the wrong kind, checkpoints of another
family or version, a transformer given to `read`, option values out of range."""

import pytest
import torch

from month3_mamba.__main__ import main
from month3_mamba.families import TransformerConfig, build_model, export
from month3_mamba.read import DEFAULT_CKPT
from month3_mamba.recall import RecallTaskConfig
from month3_mamba.rwkv import RWKVConfig
from shared.training import TrainConfig


def fails(capsys, *argv: str) -> str:
    """The one error line of `python -m month3_mamba ARGV`, checked to exit with status 2."""
    with pytest.raises(SystemExit) as stop:
        main(list(argv))
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"python -m month3_mamba {argv[0]}: error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A document and checkpoints that are wrong in each way the loader tells apart."""
    root = tmp_path_factory.mktemp("bad")
    (root / "doc.txt").write_text("prose {abc: 12} more prose")
    (root / "text.pt").write_text("not a checkpoint")
    torch.save({"model": {}, "model_config": {}, "tokenizer": {}}, root / "month1.pt")  # another month's
    state = torch.load(DEFAULT_CKPT, weights_only=True)
    torch.save({**state, "arch": "moe"}, root / "moe.pt")
    torch.save({**state, "model_config": {**state["model_config"], "d_hidden": 8}}, root / "newer.pt")
    torch.save({**state, "model": {k: v[..., :1] for k, v in state["model"].items()}}, root / "shapes.pt")
    task = RecallTaskConfig(max_seq_len=48)
    gpt = build_model("transformer", TransformerConfig(d_model=16, n_head=2), task)
    export(gpt, "transformer", task, TrainConfig(), 0.0, root / "gpt.pt")
    rwkv = build_model("rwkv", RWKVConfig(d_model=16), task)
    export(rwkv, "rwkv", task, TrainConfig(), 0.0, root / "rwkv_run" / "ckpt.pt")  # a resume file of another family
    (root / "junk_run").mkdir()
    (root / "junk_run" / "ckpt.pt").write_bytes(b"\x00" * 64)
    return root


@pytest.mark.parametrize("argv, says", [
    (["read", "/nonexistent.txt"], "no such file"),
    (["read", "{root}"], "not a file"),
    (["read", "{root}/doc.txt", "--ckpt", "/nonexistent.pt"], "No such file"),
    (["read", "{root}/doc.txt", "--ckpt", "{root}"], "directory"),
    (["read", "{root}/doc.txt", "--ckpt", "{root}/text.pt"], "not a PyTorch checkpoint"),
    (["read", "{root}/doc.txt", "--ckpt", "{root}/month1.pt"], "not a train-recall checkpoint"),
    (["read", "{root}/doc.txt", "--ckpt", "{root}/moe.pt"], "holds a 'moe' model"),
    (["read", "{root}/doc.txt", "--ckpt", "{root}/newer.pt"], "another version"),
    (["read", "{root}/doc.txt", "--ckpt", "{root}/shapes.pt"], "another version"),
    (["read", "{root}/doc.txt", "--ckpt", "{root}/gpt.pt"], "is a transformer"),
    (["read", "{root}/doc.txt", "--chunk", "0"], "chunk must be at least 1"),
    (["read", "{root}/doc.txt", "--threads", "-1"], "threads must be at least 1"),
    (["eval-recall", "--ckpt", "{root}/text.pt"], "not a PyTorch checkpoint"),
    (["eval-recall", "--lengths", "-5"], "--lengths -5"),
    (["eval-recall", "--lengths", "30", "--facts", "4"], "cannot hold 4 fact(s)"),
    (["eval-recall", "--lengths", "60", "--facts", "4", "--questions", "sequential"], "and their questions"),
    (["eval-recall", "--docs", "0"], "docs must be at least 1"),
    (["eval-recall", "--facts", "-1"], "facts must be at least 0"),
    (["make-doc", "{root}/out.txt", "--length", "-1"], "cannot hold"),
    (["make-doc", "{root}/out.txt", "--length", "30", "--facts", "4"], "at least 72 bytes"),
    (["make-doc", "{root}/out.txt", "--facts", "-2"], "facts must be at least 0"),
    (["make-doc", "{root}/out.txt", "--format", "sentences", "--length", "300", "--facts", "4"], "cannot hold"),
    (["make-doc", "/nonexistent/dir/doc.txt"], "No such file"),
    (["train-recall", "--seq-len", "5"], "seq_len must be at least 17"),
    (["train-recall", "--max-seq-len", "16"], "max_seq_len"),
    (["train-recall", "--format", "sentences"], "seq_len must be at least"),
    (["train-recall", "--d-model", "-8"], "d_model must be at least 1"),
    (["train-recall", "--arch", "hybrid", "--n-head", "3"], "divisible by n_head"),
    (["train-recall", "--arch", "rwkv", "--window", "8"], "--arch rwkv has no option --window"),
    (["train-recall", "--config", "no_such_preset"], "no such file"),
    (["train-recall", "--out-dir", "{root}/rwkv_run"], "holds a rwkv model"),
    (["train-recall", "--out-dir", "{root}/junk_run"], "not a PyTorch checkpoint"),
])
def test_user_errors_are_one_line(argv, says, files, capsys):
    if argv[0] == "train-recall":  # should a check fail to fire, train for a step in a scratch folder
        argv = [argv[0], "--max-steps", "1", "--out-dir", "{root}/scratch", "--progress", "false", *argv[1:]]
    line = fails(capsys, *[a.format(root=files) for a in argv])
    assert says in line, line


@pytest.mark.parametrize("argv", [["read"], ["read", "x", "--progress", "maybe"], ["make-doc", "x", "--length", "ten"],
                                  ["train-recall", "--arch", "moe"], ["nonsense"],
                                  ["eval-recall", "--corpus", "shakespeare"], ["eval-recall", "--vocab", "mine"],
                                  ["train-recall", "--questions", "both"]])
def test_malformed_command_lines_end_in_usage_not_a_traceback(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err and "usage:" in err
