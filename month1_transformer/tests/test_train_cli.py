"""End to end through the command line: train on an offline corpus, the loss falls,
a checkpoint and a loss-curve PNG appear, training resumes, sampling works."""

import json
import subprocess
import sys

import pytest

from month1_transformer.__main__ import main
from shared import checkpoint

SMALL = ["--data", "stdlib", "--max-chars", "60000", "--n-layer", "2", "--n-head", "2", "--n-embd", "48",
         "--block-size", "32", "--batch-size", "16", "--lr", "3e-3", "--warmup-steps", "10",
         "--eval-interval", "100", "--eval-batches", "5", "--ckpt-interval", "100", "--progress", "false",
         "--threads", "1"]


@pytest.mark.slow
def test_train_resume_and_sample(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", *SMALL, "--max-steps", "400", "--out-dir", str(out)])
    metrics = json.loads((out / "metrics.json").read_text())
    state = checkpoint.load(out / "ckpt.pt")
    history = state["history"]
    # Character-level, vocab 96: a uniform guess is ln(96) = 4.56; 400 steps must learn a lot.
    assert history["loss"][0] > 4.2, history["loss"][:3]
    assert metrics["val_loss"] < 2.65, history["eval_val"]
    assert history["eval_val"] == sorted(history["eval_val"], reverse=True)  # still falling at every eval
    assert (out / "loss.png").stat().st_size > 10_000
    # Asking for more steps continues from step 400 instead of starting again.
    main(["train", *SMALL, "--max-steps", "450", "--out-dir", str(out)])
    assert "step 400/450" in capsys.readouterr().out
    assert checkpoint.load(out / "ckpt.pt")["step"] == 450
    main(["sample", "--ckpt", str(out / "ckpt.pt"), "--prompt", "The ", "--max-new-tokens", "40", "--top-p", "0.9"])
    text = capsys.readouterr().out
    assert text.startswith("The ") and len(text) >= 40


def test_help_lists_every_option():
    result = subprocess.run([sys.executable, "-m", "month1_transformer", "train", "--help"],
                            capture_output=True, text=True, check=True)
    for option in ("--data", "--tokenizer", "--n-layer", "--pos-enc", "--max-steps", "--lr", "--out-dir"):
        assert option in result.stdout


def test_bad_corpus_name_is_a_clear_error():
    with pytest.raises(Exception, match="neither a corpus name"):
        main(["train", "--data", "no-such-corpus", "--max-steps", "1", "--out-dir", ""])
