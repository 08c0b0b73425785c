"""train-recall end to end on a tiny budget: the loss falls, the run resumes (curriculum included),
the exported checkpoint loads and reads, for every family; and the curriculum itself."""

import argparse
import re

import pytest
import torch

from month1_transformer.model import GPT
from month3_mamba.__main__ import main
from month3_mamba.delta import DeltaBlock, DeltaLM
from month3_mamba.families import load_recall_model
from month3_mamba.hybrid import AttentionBlock, HybridLM
from month3_mamba.model import MambaConfig
from month3_mamba.recall import RecallBatches, RecallTaskConfig, max_facts, training_example
from month3_mamba.rwkv import RWKVLM
from month3_mamba.train_recall import add_arguments, configs_from_args, train_recall

TINY = ["--d-model", "32", "--max-steps", "150", "--eval-interval", "75", "--eval-batches", "1",
        "--ckpt-interval", "75", "--progress", "false", "--warmup-steps", "5", "--batch-tokens", "256"]


def test_curriculum_grows_documents_and_facts():
    batches = RecallBatches(RecallTaskConfig(), max_steps=1000)
    lengths = [batches.length_at(s) for s in (0, 300, 600, 999)]
    assert lengths == sorted(lengths) and lengths[0] == 20 and lengths[-1] == 512
    assert max_facts(20, RecallTaskConfig()) == 1 and max_facts(512, RecallTaskConfig()) == 4
    x, y = batches("train", torch.Generator().manual_seed(0))
    assert x.shape == (51, 20) and batches.train_step == 1  # 1,024 bytes per batch of 20-byte documents
    answers = y[y >= 0]
    assert len(answers) == 102 and all(ord("0") <= int(a) <= ord("9") for a in answers)  # 1 fact x 2 digits each


def test_training_example_scores_only_the_answer_digits():
    import random

    x, y = training_example(random.Random(0), 200, RecallTaskConfig())
    text = bytes(x.tolist()).decode()
    for pos in (y >= 0).nonzero().flatten().tolist():
        assert text[pos] in " 0123456789" and chr(int(y[pos])).isdigit()
        assert "?" in text[max(0, pos - 5) : pos + 1]  # right after a question


def test_train_resume_export_and_read(tmp_path, capsys):
    out, ckpt = tmp_path / "run", tmp_path / "recall.pt"
    main(["train-recall", *TINY, "--d-state", "4", "--out-dir", str(out)])
    state = torch.load(out / "ckpt.pt", weights_only=True)  # the resume file holds only plain data too
    losses = state["history"]["loss"]
    # From uniform over 256 bytes (ln 256 = 5.5) to roughly uniform over the 10 digits (ln 10 = 2.3).
    assert losses[0] > 4.5 and sum(losses[-10:]) / 10 < 2.6, losses[::10]
    main(["train-recall", *TINY, "--d-state", "4", "--max-steps", "160", "--out-dir", str(out), "--export", str(ckpt)])
    assert "step 150/160" in capsys.readouterr().out
    model, task = load_recall_model(ckpt)
    assert task.seq_len == 20 and model.cfg.d_conv == MambaConfig().d_conv and model.cfg.d_model == 32
    doc = tmp_path / "doc.txt"
    doc.write_text("prose {abc: 12} more prose")
    main(["read", str(doc), "--ckpt", str(ckpt), "--progress", "false", "--ask", "abc?"])
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"abc\? .{2}   \(confidence [01]\.\d\d\)", lines[-1]), lines[-1]


FAMILY_OPTIONS = {  # each family's own options, to check they reach its config
    "hybrid": ["--d-state", "4", "--n-layer", "2", "--attn-every", "2", "--n-head", "2", "--window", "16"],
    "rwkv": ["--ffn-mult", "2", "--chunk-size", "8"],
    "delta": ["--d-state", "4", "--n-head", "2", "--chunk-size", "8"],
    "transformer": ["--n-head", "2", "--pos-enc", "rope"],
}


@pytest.mark.parametrize("arch", FAMILY_OPTIONS)
def test_every_family_trains_exports_and_loads_the_same_model(arch, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    ckpt = tmp_path / "recall.pt"
    args = parser.parse_args(["--arch", arch, *TINY, *FAMILY_OPTIONS[arch], "--max-steps", "40", "--eval-interval",
                              "0", "--max-seq-len", "48", "--out-dir", str(tmp_path / "run"), "--export", str(ckpt)])
    model, trainer = train_recall(*configs_from_args(args))
    losses = trainer.history.loss
    assert sum(losses[-5:]) / 5 < losses[0] - 1.0, losses[::5]  # 40 steps on 20-48 byte documents
    loaded, task = load_recall_model(ckpt)
    assert type(loaded) is type(model) and task.max_seq_len == 48
    if arch == "hybrid":
        assert isinstance(loaded.backbone.layers[1], AttentionBlock) and loaded.cfg.window == 16
    elif arch == "rwkv":
        assert isinstance(loaded, RWKVLM) and loaded.cfg.ffn_mult == 2 and loaded.cfg.chunk_size == 8
    elif arch == "delta":
        assert isinstance(loaded.backbone.layers[1], DeltaBlock) and loaded.cfg.n_head == 2
    else:
        assert isinstance(loaded, GPT) and loaded.cfg.n_head == 2 and loaded.cfg.pos_enc == "rope"
    idx = torch.randint(0, 256, (2, 40))
    with torch.no_grad():  # loaded with the scan it was trained with: the very same numbers
        assert torch.equal(load_recall_model(ckpt, fused=False)[0](idx)[0], model.eval()(idx)[0])
    doc = tmp_path / "doc.txt"
    doc.write_text("prose {abc: 12} more prose")
    if arch == "transformer":  # no constant-size state to stream through
        with pytest.raises(SystemExit) as stop:
            main(["read", str(doc), "--ckpt", str(ckpt), "--progress", "false", "--ask", "abc?"])
        assert stop.value.code == 2 and "is a transformer" in capsys.readouterr().err
        return
    assert isinstance(loaded, (HybridLM, RWKVLM, DeltaLM))
    main(["read", str(doc), "--ckpt", str(ckpt), "--progress", "false", "--ask", "abc?"])
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"abc\? .{2}   \(confidence [01]\.\d\d\)", lines[-1]), lines[-1]
