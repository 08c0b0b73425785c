"""The shared training loop: LR schedule, loss falls, interrupted runs resume bit-identically."""

import math

import pytest
import torch
from torch import nn

from shared.training import TrainConfig, Trainer, cosine_lr


class TinyLM(nn.Module):
    """Bigram model with dropout, so resuming must restore the dropout RNG too."""

    def __init__(self, vocab: int = 16) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, 32)
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(32, vocab)

    def forward(self, x, y):
        logits = self.head(self.drop(self.emb(x)))
        return logits, nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1))


def get_batch(split, gen):
    # A learnable rule: next token = (token + 1) % 16, over random windows.
    start = torch.randint(0, 16, (8, 1), generator=gen)
    seq = (start + torch.arange(9)) % 16
    return seq[:, :-1], seq[:, 1:]


def make_trainer(tmp_path, callback=None, **overrides):
    torch.manual_seed(0)
    cfg = TrainConfig(max_steps=40, lr=1e-2, min_lr=1e-3, warmup_steps=5, eval_interval=10, eval_batches=2,
                      ckpt_interval=10, out_dir=str(tmp_path), progress=False, **overrides)
    return Trainer(TinyLM(), get_batch, cfg, callback=callback)


def test_cosine_schedule_shape():
    cfg = TrainConfig(max_steps=100, lr=1.0, min_lr=0.1, warmup_steps=10)
    assert cosine_lr(0, cfg) == pytest.approx(0.1)
    assert cosine_lr(9, cfg) == pytest.approx(1.0)
    assert cosine_lr(10, cfg) == pytest.approx(1.0)
    assert cosine_lr(55, cfg) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert cosine_lr(100, cfg) == pytest.approx(0.1)
    lrs = [cosine_lr(s, cfg) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_loss_falls_and_history_is_recorded(tmp_path):
    trainer = make_trainer(tmp_path)
    history = trainer.fit()
    assert history.step == list(range(1, 41))
    assert history.eval_step == [10, 20, 30, 40]
    assert history.eval_val[-1] < 0.5 * history.eval_val[0]
    assert (tmp_path / "ckpt.pt").exists()


def test_interrupted_run_resumes_to_identical_weights(tmp_path):
    reference = make_trainer(tmp_path / "straight")
    reference.fit()

    def interrupt(trainer):
        if trainer.step == 27:  # last checkpoint at 20: steps 21-27 are lost, as in a kill
            raise KeyboardInterrupt

    first = make_trainer(tmp_path / "resumed", callback=interrupt)
    first.fit()
    assert first.step == 27
    torch.manual_seed(123)  # a fresh process would have a different global RNG state
    second = make_trainer(tmp_path / "resumed")
    assert second.step == 20
    second.fit()
    for p, q in zip(second.model.parameters(), reference.model.parameters()):
        assert torch.equal(p, q)
    assert second.history.loss == reference.history.loss
    assert second.history.eval_val == reference.history.eval_val
