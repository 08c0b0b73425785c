"""train-recall end to end on a tiny budget: the loss falls, the run resumes (curriculum included),
the exported checkpoint loads and reads; and the curriculum itself."""

import torch

from month3_mamba.__main__ import main
from month3_mamba.recall import RecallBatches, RecallTaskConfig, max_facts, training_example
from month3_mamba.train_recall import load_recall_model
from shared import checkpoint

TINY = ["--d-model", "32", "--d-state", "4", "--max-steps", "150", "--eval-interval", "75", "--eval-batches", "1",
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
    main(["train-recall", *TINY, "--out-dir", str(out)])
    state = checkpoint.load(out / "ckpt.pt")
    losses = state["history"]["loss"]
    # From uniform over 256 bytes (ln 256 = 5.5) to roughly uniform over the 10 digits (ln 10 = 2.3).
    assert losses[0] > 4.5 and sum(losses[-10:]) / 10 < 2.6, losses[::10]
    main(["train-recall", *TINY, "--max-steps", "160", "--out-dir", str(out), "--export", str(ckpt)])
    assert "step 150/160" in capsys.readouterr().out
    model, task = load_recall_model(ckpt)
    assert task.seq_len == 20 and model.cfg.d_conv == 8 and model.cfg.d_model == 32
    doc = tmp_path / "doc.txt"
    doc.write_text("prose {abc: 12} more prose")
    main(["read", str(doc), "--ckpt", str(ckpt), "--progress", "0", "--ask", "abc?"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("abc? ") and len(lines[-1]) == len("abc? 12")
