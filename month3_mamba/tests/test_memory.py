"""LongMemory, the seam month 6 calls: text in as it comes, answers with a confidence, a state that
saves and loads. Over the committed reader (braces), a tiny untrained sentences model and the shipped memory reader."""

import math

import pytest
import torch

from month3_mamba.families import DEFAULT_CKPT, MEMORY_CKPT, load_recall_model
from month3_mamba.memory import LongMemory, decode_answer
from month3_mamba.model import MambaConfig, MambaLM
from month3_mamba.recall import RecallTaskConfig, evaluate_recall
from shared.errors import UserError

DOC = "Some prose to read. {abc: 12} More prose, then another fact {xyz: 57} and the end of it."


@pytest.fixture(scope="module")
def reader():
    torch.set_num_threads(1)
    return load_recall_model(DEFAULT_CKPT)


def test_write_in_pieces_is_writing_at_once(reader):
    whole, pieces = LongMemory(*reader), LongMemory(*reader, chunk=7)
    whole.write(DOC)
    for start in range(0, len(DOC), 10):
        pieces.write(DOC[start : start + 10])
    assert whole.tokens == pieces.tokens == len(DOC)
    for a, b in zip(whole.state, pieces.state):
        torch.testing.assert_close(a.ssm, b.ssm, rtol=1e-4, atol=1e-5)
    a, b = whole.recall("abc?"), pieces.recall("abc?")
    assert a.answer == b.answer and math.isclose(a.confidence, b.confidence, rel_tol=1e-4)


def test_recall_leaves_the_state_alone_and_reports_its_confidence(reader):
    memory = LongMemory(*reader)
    memory.write(DOC)
    before = [s.ssm.clone() for s in memory.state]
    r = memory.recall("abc?")
    assert all(torch.equal(a, s.ssm) for a, s in zip(before, memory.state))
    assert r.prompt == "{abc? " and len(r.answer) == 2 and r.stopped  # braces: the value's fixed length
    # The confidence is the mean probability of the bytes written, in log space, teacher-forced again here:
    model = memory.model
    with torch.no_grad():
        state = model.new_state(1)
        model(torch.tensor([list(DOC.encode())]), state=state)
        logits = model(torch.tensor([list((r.prompt + r.answer).encode())]), state=state)[0][0]
    logp = torch.log_softmax(logits, -1)
    n = len(r.prompt)
    expected = sum(float(logp[n - 1 + i, ord(ch)]) for i, ch in enumerate(r.answer)) / len(r.answer)
    assert math.isclose(r.mean_logprob, expected, rel_tol=1e-4) and math.isclose(r.confidence, math.exp(expected))
    assert memory.state_bytes == 23_552  # 2 layers x (128 x 16 SSM + 128 x 7 conv) floats, whatever was written


def test_save_and_load_give_the_same_answers(reader, tmp_path):
    memory = LongMemory(*reader)
    memory.write(DOC)
    path = memory.save(tmp_path / "memory.pt")
    torch.load(path, weights_only=True)  # plain tensors and data
    restored = LongMemory.from_checkpoint().load(path)
    assert restored.tokens == len(DOC)
    questions = ("abc?", "xyz?", "qqq?")
    assert [restored.recall(q) for q in questions] == [memory.recall(q) for q in questions]
    restored.write(" {qqq: 33}")
    memory.write(" {qqq: 33}")
    assert restored.recall("qqq?") == memory.recall("qqq?")


def test_a_state_as_bytes_restores_the_same_answers(reader):
    memory = LongMemory(*reader)
    memory.write(DOC)
    restored = LongMemory(*reader).from_bytes(memory.to_bytes())
    assert restored.tokens == len(DOC) and restored.recall("xyz?") == memory.recall("xyz?")
    memory.write("more prose " * 1000)  # a saved state is the state, not what was read (views saved their base)
    assert abs(len(memory.to_bytes()) - len(restored.to_bytes())) < 100
    with pytest.raises(UserError, match="not a PyTorch checkpoint"):
        LongMemory(*reader).from_bytes(b"not a state")


def test_load_refuses_another_models_state_and_other_files(reader, tmp_path):
    memory = LongMemory(*reader)
    path = memory.save(tmp_path / "memory.pt")
    other = LongMemory(MambaLM(MambaConfig(d_model=16, n_layer=1, d_state=4)), RecallTaskConfig())
    with pytest.raises(UserError, match="another model"):
        other.load(path)
    torch.save({"model": {}}, tmp_path / "not_memory.pt")
    with pytest.raises(UserError, match="not a saved LongMemory"):
        memory.load(tmp_path / "not_memory.pt")


def test_sentences_answers_stop_at_the_terminator_or_the_limit():
    torch.manual_seed(0)
    model = MambaLM(MambaConfig(d_model=16, n_layer=1, d_state=4)).eval()
    task = RecallTaskConfig(format="sentences", questions="independent", seq_len=80)
    memory = LongMemory(model, task, max_answer=6)
    memory.write("My door code is 4417. ")
    r = memory.recall("What is my door code?")
    assert r.prompt == "\nQ: what is my door code?\nA: my door code is "
    assert memory.recall("my door code").prompt == r.prompt  # the template asks the same question
    # Untrained: whatever it writes, it stops at "." (not included) or after max_answer bytes.
    assert (r.stopped and "." not in r.answer) or (not r.stopped and len(r.answer) <= 6)
    text, _, _ = decode_answer(model, memory.state, r.prompt, ".", 3)
    assert len(text) <= 3


def test_a_transformer_cannot_be_a_memory():
    from month3_mamba.families import TransformerConfig, build_model

    task = RecallTaskConfig(max_seq_len=48)
    with pytest.raises(UserError, match="transformer"):
        LongMemory(build_model("transformer", TransformerConfig(d_model=16, n_head=2), task), task)


def test_the_shipped_memory_reader_tells_four_facts_apart_on_prose_it_never_saw():
    """Month 6's reader: 4 sentence facts in 4,000 tokens of the licenses corpus (no training document came from
    it), each asked on its own, value and terminator exact (a random guess of the right shape is nearly never
    exact). Measured 0.94 at 1k and 0.91 at 10k tokens (RESULTS.md); the bound leaves room for 16 histories' noise.
    Keys the history never stated are answered 'unknown.' about half the time here (0.55 of 64 measured; a reader
    trained without untold questions: never)."""
    model, task = load_recall_model(MEMORY_CKPT)
    result = evaluate_recall(model, 4000, task, n_docs=16, n_facts=4, corpus="licenses", seed=5, untold=4)
    assert result["accuracy"] >= 0.75 and result["untold_accuracy"] >= 0.3, result
    memory = LongMemory(model, task)
    memory.write("The weather was mild that week. My locker number is 5512. Then we went home and slept.")
    r = memory.recall("What is my locker number?")
    assert (r.answer, r.stopped) == ("5512", True) and r.confidence > 0.9, r
