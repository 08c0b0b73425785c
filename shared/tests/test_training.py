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


def test_no_weight_decay_mark_is_respected():
    """Matrices decay, vectors do not, and a matrix marked `_no_weight_decay` (Mamba's A_log) does not."""
    from shared.training import make_adamw

    model = TinyLM()
    model.head.weight._no_weight_decay = True
    opt = make_adamw(model, TrainConfig(weight_decay=0.1))
    decay = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decay == {id(model.emb.weight)}
    # And the effect: with zero gradients, only decayed weights shrink.
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    shrunk = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert shrunk == {"emb.weight"}


def test_mamba_marks_a_log_and_d_as_not_decayed():
    from month3_mamba.model import MambaConfig, MambaLM
    from shared.training import decays

    model = MambaLM(MambaConfig(vocab_size=16, d_model=16, n_layer=1, d_state=4))
    kept = {n for n, p in model.named_parameters() if p.dim() >= 2 and not decays(p)}
    assert kept and all(n.endswith("A_log") for n in kept), kept
    assert all(getattr(p, "_no_weight_decay", False) for n, p in model.named_parameters() if n.endswith(".D"))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_precision_keeps_the_loss_curve(tmp_path, precision):
    """bf16 autocast trains to the same losses as fp32 within bf16's noise; the loss falls either way."""
    torch.manual_seed(0)
    cfg = TrainConfig(max_steps=60, lr=1e-2, min_lr=1e-3, warmup_steps=5, eval_interval=0, progress=False)
    reference = Trainer(TinyLM(), get_batch, cfg).fit().loss
    torch.manual_seed(0)
    cfg.precision = precision
    trainer = Trainer(TinyLM(), get_batch, cfg)
    assert trainer.autocast_dtype == (torch.bfloat16 if precision == "bf16" else None)
    losses = trainer.fit().loss
    assert losses[-1] < 0.5 * losses[0]
    assert max(abs(a - b) for a, b in zip(losses, reference)) < (1e-6 if precision == "fp32" else 0.05)
