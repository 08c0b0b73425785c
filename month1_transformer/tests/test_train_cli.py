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


def test_bad_corpus_name_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--data", "no-such-corpus", "--max-steps", "1", "--out-dir", ""])
    assert stop.value.code == 2 and "neither a corpus name" in capsys.readouterr().err


def test_fused_norms_equal_the_from_scratch_ones():
    """fused_norm swaps norm.py's modules for torch's: same parameter names, same outputs."""
    import torch

    from month1_transformer.model import GPT, GPTConfig

    for norm in ("layernorm", "rmsnorm"):
        torch.manual_seed(0)
        fused = GPT(GPTConfig(n_layer=2, n_embd=32, n_head=2, block_size=16, bias=False, norm=norm))
        scratch = GPT(GPTConfig(n_layer=2, n_embd=32, n_head=2, block_size=16, bias=False, norm=norm,
                                fused_norm=False))
        scratch.load_state_dict(fused.state_dict())  # same names and shapes, or this raises
        idx = torch.randint(0, 65, (3, 16))
        torch.testing.assert_close(fused(idx)[0], scratch(idx)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_bf16_training_follows_the_fp32_curve(tmp_path):
    """The speed path (bf16 autocast, fp32 attention on CPU, fused norms and AdamW) trains the mini-GPT
    along the same loss curve as plain fp32 with our from-scratch modules, within bf16's noise."""
    from shared import checkpoint

    curves = {}
    runs = {"fast": ["--precision", "bf16"],
            "plain": ["--precision", "fp32", "--fused-norm", "false", "--fused-attention", "false"]}
    for name, flags in runs.items():
        out = tmp_path / name
        main(["train", *SMALL, "--max-steps", "200", "--eval-interval", "0", "--out-dir", str(out), *flags])
        curves[name] = checkpoint.load(out / "ckpt.pt")["history"]["loss"]
    fast, plain = curves["fast"], curves["plain"]
    assert fast[-1] < 0.75 * fast[0]
    # Mean of the last 20 steps' losses: within 2% of each other.
    tail = lambda c: sum(c[-20:]) / 20  # noqa: E731
    assert abs(tail(fast) - tail(plain)) < 0.02 * tail(plain), (tail(fast), tail(plain))
