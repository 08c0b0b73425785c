"""The memory formats (facts.py), the offline corpora (prose.py) and the scorer of independent questions:
what a document says, what is asked and scored, and that asking from a copied state is asking after the text."""

import random

import pytest
import torch

from month3_mamba.facts import QUESTION_TEMPLATE, UNKNOWN, VOCABULARIES, BraceFacts, SentenceFacts
from month3_mamba.families import TransformerConfig, build_model
from month3_mamba.model import MambaConfig, MambaLM
from month3_mamba.prose import filler, window
from month3_mamba.recall import (
    RecallBatches,
    RecallTaskConfig,
    answer_logits,
    encode,
    evaluate_recall,
    independent_example,
    independent_loss,
    make_document,
    question_rows,
    random_facts,
    untold_facts,
    untold_question,
    wilson_interval,
)

SENTENCES = RecallTaskConfig(format="sentences", questions="independent", seq_len=80, max_seq_len=400, n_facts=16)


@pytest.mark.parametrize("vocab", ["train", "heldout"])
def test_sentence_facts_are_plain_sentences_with_a_terminated_answer(vocab):
    facts = SentenceFacts().random_facts(random.Random(0), 16, vocab)
    assert len({f.key for f in facts}) == len({f.value for f in facts}) == 16
    for f in facts:
        sentence = f"{f.key} is {f.value}. "
        assert f.statement in (sentence, sentence[0].upper() + sentence[1:])
        assert f.question == QUESTION_TEMPLATE.format(key=f.key) == f"\nQ: what is {f.key}?\nA: {f.key} is "
        assert f.answer == f.value + "." and "." not in f.value and "\n" not in f.value
    lengths = {len(f.value) for f in facts}
    assert len(lengths) > 3  # values of varying length: the terminator, not a count, ends them


def test_the_heldout_vocabulary_shares_nothing_with_the_training_one():
    train, heldout = VOCABULARIES["train"], VOCABULARIES["heldout"]
    assert not set(train[0]) & set(heldout[0]) and not set(train[2]) & set(heldout[2])
    rng = random.Random(1)
    train_values = {train[3](rng) for _ in range(2000)}
    heldout_values = {heldout[3](rng) for _ in range(2000)}
    assert not train_values & heldout_values


@pytest.mark.parametrize("question, key", [("What is my door code?", "my door code"), ("my door code", "my door code"),
                                           ("  what's   our spare gate ", "our spare gate"),
                                           ("what is Alice's hotel room?", "Alice's hotel room")])
def test_a_question_is_asked_in_the_template(question, key):
    assert SentenceFacts().prompt(question) == f"\nQ: what is {key}?\nA: {key} is "


def test_a_document_holds_its_facts_at_word_starts():
    rng = random.Random(3)
    facts = random_facts(rng, 4, SENTENCES)
    text, order = make_document(rng, 2000, facts, "pydoc", snap_to_words=True, with_questions=False)
    assert len(text) == 2000 and sorted(order, key=lambda f: f.key) == sorted(facts, key=lambda f: f.key)
    for f in facts:
        at = text.index(f.statement)
        assert at == 0 or text[at - 1].isspace()


def test_corpora_are_ascii_prose_without_braces():
    rng = random.Random(0)
    for corpus in ("pydoc", "licenses", "words"):
        text = filler(rng, 3000, corpus)
        assert len(text) == 3000 and text.isascii() and "{" not in text and "}" not in text
    assert window(random.Random(5), 10, "abc") in ("abcabcabca", "bcabcabcab", "cabcabcabc")  # wraps round


def test_question_rows_score_the_answer_and_its_terminator_only():
    facts = SentenceFacts().random_facts(random.Random(2), 3)
    ids, y = question_rows(facts)
    for row, f in enumerate(facts):
        text = bytes(ids[row].tolist()).decode()
        assert text.startswith(f.question + f.answer) and not text[len(f.question + f.answer):].strip()
        scored = [(i, chr(t)) for i, t in enumerate(y[row].tolist()) if t >= 0]
        assert "".join(ch for _, ch in scored) == f.answer
        assert [text[i + 1] for i, _ in scored] == list(f.answer)  # the target is the next byte


@pytest.mark.parametrize("family", ["mamba", "transformer"])
def test_questions_from_a_copied_state_are_questions_after_the_text(family):
    """answer_logits asks every question from a copy of the state after its history; it must give the
    logits of reading history + question as one text."""
    torch.manual_seed(0)
    task = RecallTaskConfig(format="sentences", questions="independent", seq_len=80, max_seq_len=300)
    model = (MambaLM(MambaConfig(d_model=16, n_layer=2, d_state=4, scan="fused")) if family == "mamba"
             else build_model("transformer", TransformerConfig(d_model=16, n_head=2, pos_enc="rope"), task)).eval()
    rng = random.Random(0)
    docs = [make_document(rng, 120, random_facts(rng, 2, task), "pydoc", True, with_questions=False) for _ in range(2)]
    q, _ = question_rows([f for _, order in docs for f in order])
    got = answer_logits(model, [text for text, _ in docs], q, chunk=50)
    for row in range(q.size(0)):
        whole = torch.tensor([encode(docs[row // 2][0]) + q[row].tolist()])
        with torch.no_grad():
            expected = model(whole)[0][0, 120:]
        torch.testing.assert_close(got[row], expected, rtol=1e-4, atol=1e-4)


def test_independent_training_batches_and_loss():
    batches = RecallBatches(SENTENCES, max_steps=100)
    batches.train_step = 99
    history, q, y = batches("train", torch.Generator().manual_seed(0))
    assert history.shape[1] == 400 and q.size(0) == history.size(0) * 4 and q.shape == y.shape  # 400 // 100 questions
    model = MambaLM(MambaConfig(d_model=16, n_layer=1, d_state=4, scan="fused"))
    loss = independent_loss(model, (history, q, y))
    loss.backward()
    assert 4.5 < loss.item() < 6.5  # ~ln 256 untrained
    assert model.backbone.embeddings.weight.grad.abs().sum() > 0
    # The reading gets gradient from the questions: the first layer's conv sees only the history's bytes too.
    assert model.backbone.layers[0].mixer.A_log.grad.abs().sum() > 0


def test_untold_questions_ask_keys_the_history_never_stated():
    untold = RecallTaskConfig(**{**vars(SENTENCES), "untold": 0.25})
    asked = [f for seed in range(20) for f in independent_example(random.Random(seed), 2000, untold)[1]]
    plain = [f for seed in range(20) for f in independent_example(random.Random(seed), 2000, SENTENCES)[1]]
    assert not any(f.answer == UNKNOWN + "." for f in plain)
    never = [f for f in asked if f.value == UNKNOWN]
    assert 0.15 < len(never) / len(asked) < 0.35  # a quarter, of 400 questions
    for seed in range(20):
        text, questions = independent_example(random.Random(seed), 2000, untold)
        for f in questions:  # told keys are in the history (as written, maybe capitalised), untold keys are not
            stated = f.key in text or f.key[0].upper() + f.key[1:] in text
            assert stated == (f.value != UNKNOWN), f.key
            assert f.question == QUESTION_TEMPLATE.format(key=f.key) and f.answer == f.value + "."
    with pytest.raises(ValueError, match="sentences"):
        RecallTaskConfig(untold=0.25)  # braces: no answer for a key never stated
    with pytest.raises(ValueError, match="no answer"):
        BraceFacts().untold("qzv")
    with pytest.raises(ValueError, match="below 1"):
        RecallTaskConfig(**{**vars(SENTENCES), "untold": 1.0})


def one_part_away(key: str, told: str, vocab: str = "train") -> bool:
    """`key` keeps `told`'s owner or its qualifier and thing (written independently of SentenceFacts.close_key)."""
    owner = max((o for o in VOCABULARIES[vocab][0] if told.startswith(o + " ")), key=len)
    return key.startswith(owner + " ") or key.endswith(" " + told[len(owner) + 1 :])


@pytest.mark.parametrize("vocab", ["train", "heldout"])
def test_close_untold_keys_change_one_part_of_a_told_key(vocab):
    fmt, rng = SentenceFacts(), random.Random(0)
    for fact in random_facts(rng, 40, SENTENCES, vocab):
        close = fmt.close_key(rng, fact.key, vocab)
        assert close != fact.key and one_part_away(close, fact.key, vocab), (fact.key, close)
    told = random_facts(random.Random(1), 4, SENTENCES)
    asked = untold_facts(random.Random(2), 8, told, SENTENCES, close=True)
    assert len({f.key for f in asked}) == 8 and not {f.key for f in asked} & {f.key for f in told}
    assert all(f.answer == UNKNOWN + "." for f in asked)
    with pytest.raises(ValueError, match="no parts"):
        BraceFacts().close_key(rng, "qzv")


def test_training_can_ask_untold_keys_close_to_told_ones():
    def near_share(share: float) -> float:
        task, rng = RecallTaskConfig(**{**vars(SENTENCES), "untold": 0.5, "untold_close": share}), random.Random(3)
        near = 0
        for _ in range(200):
            told = random_facts(rng, 2, task)
            key = untold_question(rng, told, task).key
            assert key not in {f.key for f in told}
            near += any(one_part_away(key, f.key) for f in told)
        return near / 200

    assert near_share(1.0) == 1 and near_share(0.0) < 0.5  # random keys share an owner or thing less often
    task = RecallTaskConfig(**{**vars(SENTENCES), "untold": 0.5, "untold_close": 1.0})
    for seed in range(10):  # in a whole example too, an untold key is never stated
        text, questions = independent_example(random.Random(seed), 2000, task)
        assert all((f.key in text or f.key[0].upper() + f.key[1:] in text) == (f.value != UNKNOWN) for f in questions)
    with pytest.raises(ValueError, match="give --untold"):
        RecallTaskConfig(**{**vars(SENTENCES), "untold_close": 0.5})
    with pytest.raises(ValueError, match="between 0 and 1"):
        RecallTaskConfig(**{**vars(SENTENCES), "untold": 0.25, "untold_close": 1.5})


def test_untold_keys_are_scored_apart_from_the_told_ones():
    model = MambaLM(MambaConfig(d_model=16, n_layer=1, d_state=4)).eval()
    told = evaluate_recall(model, 300, SENTENCES, n_docs=2, n_facts=2, corpus="licenses")
    both = evaluate_recall(model, 300, SENTENCES, n_docs=2, n_facts=2, corpus="licenses", untold=3)
    assert {k: both[k] for k in ("accuracy", "byte_accuracy", "answers")} == \
        {k: told[k] for k in ("accuracy", "byte_accuracy", "answers")}  # the same documents, the same told score
    assert "untold" not in told and both["untold"] == 6 and both["untold_accuracy"] == 0  # untrained: never "unknown."


def test_untrained_model_scores_near_zero_with_an_honest_interval():
    model = MambaLM(MambaConfig(d_model=16, n_layer=1, d_state=4)).eval()
    r = evaluate_recall(model, 300, SENTENCES, n_docs=2, n_facts=2, corpus="licenses", vocab="heldout")
    assert r["accuracy"] == 0 and r["answers"] == 4 and r["ci95"][0] == 0 and 0.4 < r["ci95"][1] < 0.6
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(95, 100) == pytest.approx((0.8882, 0.9785), abs=1e-4)
