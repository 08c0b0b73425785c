"""The experts' data, the mixture of adapters on a tiny random LLaMA, and (marked `model`) on the real SmolLM2."""

import copy
import json

import pytest
import torch

from month2_llm_core.chat import Sampling
from month4_moe import experts as E

VOCAB = 97


def tiny_llama(vocab: int = VOCAB):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                        tie_word_embeddings=True)).eval()


def save_random_adapters(base, folder, names, seed: int = 1) -> dict:
    """One LoRA adapter per name with random (non-zero) A and B, saved the way month 2 saves them."""
    from peft import LoraConfig, get_peft_model

    dirs = {}
    for i, name in enumerate(names):
        torch.manual_seed(seed + i)
        model = get_peft_model(copy.deepcopy(base), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                                init_lora_weights=False))
        dirs[name] = folder / name
        model.save_pretrained(dirs[name])
    return dirs


@pytest.fixture(scope="module")
def tiny_mixture(tmp_path_factory):
    folder = tmp_path_factory.mktemp("adapters")
    base = tiny_llama()
    dirs = save_random_adapters(base, folder, E.DOMAINS)
    return E.MixtureOfAdapters.from_base(copy.deepcopy(base), None, dirs), base, dirs


IDS = torch.randint(0, VOCAB, (2, 12), generator=torch.Generator().manual_seed(3))


def alone(base, adapter_dir):
    from peft import PeftModel

    return PeftModel.from_pretrained(copy.deepcopy(base), str(adapter_dir)).eval()


@torch.no_grad()
def test_each_expert_gives_the_logits_of_its_adapter_loaded_alone(tiny_mixture):
    moa, base, dirs = tiny_mixture
    seen = {}
    for expert in reversed(E.DOMAINS):  # switch in another order than loaded
        with moa.use(expert):
            seen[expert] = moa.model(IDS).logits
        torch.testing.assert_close(seen[expert], alone(base, dirs[expert])(IDS).logits, atol=1e-5, rtol=1e-5)
    for a, b in zip(E.DOMAINS, E.DOMAINS[1:]):
        assert (seen[a] - seen[b]).abs().max() > 1e-3  # the adapters really differ
    with moa.use(E.GENERAL):
        torch.testing.assert_close(moa.model(IDS).logits, base(IDS).logits, atol=1e-5, rtol=1e-5)
    with pytest.raises(KeyError, match="no adapter 'poetry'"):
        with moa.use("poetry"):
            pass


@torch.no_grad()
def test_merged_adapter_is_the_four_updates_summed_into_the_weights(tiny_mixture):
    moa, base, dirs = tiny_mixture
    merged = copy.deepcopy(base)
    for expert in E.DOMAINS:  # what a user does to get "one model with all four merged"
        merged = alone(merged, dirs[expert]).merge_and_unload()
    name = moa.add_merged("merged")
    with moa.use(name):
        torch.testing.assert_close(moa.model(IDS).logits, merged(IDS).logits, atol=1e-4, rtol=1e-4)


def test_adapter_bytes_are_the_lora_matrices(tiny_mixture):
    moa, _, _ = tiny_mixture
    # 2 layers x (q_proj: A 4x32 + B 4x32... in_features 32, out 32; v_proj: out 16 for 2 kv heads of 8)
    per_layer = 4 * 32 + 32 * 4 + 4 * 32 + 16 * 4
    sizes = moa.adapter_bytes()
    assert set(E.DOMAINS) <= set(sizes) and all(sizes[d] == 2 * per_layer * 4 for d in E.DOMAINS), sizes


def test_route_and_generate_follows_the_router(tiny_mixture, monkeypatch):
    moa, _, _ = tiny_mixture
    asked = []

    class Scripted:
        def decide(self, text):
            from month4_moe.router import Decision

            return Decision(E.GENERAL, 0.4, "math") if "?" in text else Decision("code", 0.97, "code")

    def fake_generate(expert, messages, sampling=None):
        asked.append((expert, messages[-1]["content"]))
        return f"answer from {expert}"

    monkeypatch.setattr(moa, "router", Scripted())
    monkeypatch.setattr(moa, "generate", fake_generate)
    assert moa.route_and_generate("sort a list") == E.RoutedAnswer("code", 0.97, "answer from code", "code")
    unsure = moa.route_and_generate("hmm?")
    assert (unsure.expert, unsure.candidate, unsure.probability) == (E.GENERAL, "math", 0.4)
    assert asked == [("code", "sort a list"), (E.GENERAL, "hmm?")]


def test_missing_adapter_folder_is_named_before_loading(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an adapter folder"):
        E.MixtureOfAdapters.load(tmp_path, router_dir=None)


# ---------------------------------------------------------------- data


def test_math_answers_are_right_and_splits_phrased_apart():
    for pair in E.make_math("train", 200) + E.make_math("heldout", 100) + E.math_second_set(60):
        expr, value = pair.answer.split(" = ")[0], pair.truth
        assert eval(expr.replace("/", "//")) == int(value), pair  # noqa: S307 (our own arithmetic)
        assert pair.answer == f"{expr} = {value}. The answer is {value}."
    train = {p.messages for p in E.make_math("train", 400)}
    assert not train & {p.messages for p in E.make_math("heldout", 100)}
    assert E.make_math("heldout", 10) == E.make_math("heldout", 20)[:10]
    def shape(p):  # the wording without its numbers
        return "".join(c for c in p.messages[-1][1] if not c.isdigit())

    generated = {shape(p) for p in E.make_math("train", 400) + E.make_math("heldout", 100)}
    assert not generated & {shape(p) for p in E.math_second_set(60)}


def test_exact_answer_score():
    pairs = E.make_math("heldout", 3)
    answers = [p.answer for p in pairs]
    assert E.math_exact(answers, pairs) == 1.0
    assert E.last_number("so 1,234 + 2 = 1,236.") == "1236" and E.last_number("no digits") is None
    assert E.math_exact(["I think it is 7", "", pairs[2].truth + ".0"], pairs) == pytest.approx(1 / 3)


def test_code_and_text_held_out_sources_never_appear_in_training():
    functions = E.stdlib_functions(max_files=120)
    train = E.make_code("train", 60, functions=functions)
    heldout = E.make_code("heldout", 10, functions=functions)
    module_of = {f"```python\n{f.source}\n```": f.module for f in functions}
    assert not {module_of[p.answer] for p in train} & {module_of[p.answer] for p in heldout}
    assert all(p.messages[-1][1].count("```") == 2 and p.answer.startswith("```python\ndef ") for p in heldout)
    paragraphs = dict((text, topic) for topic, text in E.doc_paragraphs())
    tasks = {split: E.make_text(split, 40) for split in E.SPLITS}

    def topic(p):
        return paragraphs.get(p.answer) or next(t for text, t in paragraphs.items() if text.endswith(p.answer))

    assert not {topic(p) for p in tasks["train"]} & {topic(p) for p in tasks["heldout"]}
    wrong = E.misspell("Assignment statements are used to rebind names to values", __import__("random").Random(0), 1.0)
    assert wrong != "Assignment statements are used to rebind names to values" and len(wrong.split()) == 9


def test_chat_dialogues_end_with_a_user_turn():
    for split in E.SPLITS:
        for pair in E.make_chat(split, 50):
            roles = [role for role, _ in pair.messages]
            assert roles[-1] == "user" and roles[::2] == ["user"] * len(roles[::2]) and pair.answer
    assert E.make_pairs("chat", "train", 5) == E.make_chat("train", 5)
    with pytest.raises(ValueError, match="unknown domain"):
        E.make_pairs("poetry", "train", 5)


# ---------------------------------------------------------------- with SmolLM2's tokenizer / model


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from shared.models import chat_model_path

    return AutoTokenizer.from_pretrained(chat_model_path(progress=False))


@pytest.mark.model
def test_prompt_is_masked_and_answer_ends_the_turn(tokenizer):
    from month2_llm_core.finetune import IGNORE_INDEX

    pair = E.make_chat("train", 3)[-1]
    prompt, completion = E.pair_texts(tokenizer, pair)
    assert completion == pair.answer + tokenizer.eos_token and prompt.endswith("<|im_start|>assistant\n")
    [(ids, labels)] = E.encode_pairs(tokenizer, [pair], 512)
    answer = [t for t in labels if t != IGNORE_INDEX]
    assert tokenizer.decode(answer) == completion and ids[-len(answer):] == answer
    assert E.encode_pairs(tokenizer, [pair], 10) == []


@pytest.mark.model
def test_expert_backend_streams_with_its_adapter_on_the_shared_base(tokenizer, tmp_path):
    from month2_llm_core.inference import stream_tokens

    base = tiny_llama(vocab=len(tokenizer))
    dirs = save_random_adapters(base, tmp_path, ["math", "code"])
    moa = E.MixtureOfAdapters.from_base(copy.deepcopy(base), tokenizer, dirs)
    messages = [{"role": "user", "content": "What is 2 + 2?"}]
    backend = moa.backend("math")
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True,
                                        return_tensors="pt")["input_ids"]
    assert backend.count_tokens(messages) == ids.size(1) and "math" in backend.name
    expected = tokenizer.decode(list(stream_tokens(alone(base, dirs["math"]), ids, 8)), skip_special_tokens=True)
    assert "".join(backend.stream(messages, Sampling(max_new_tokens=8))) == expected
    other = "".join(moa.backend("code").stream(messages, Sampling(max_new_tokens=8)))
    general = "".join(moa.backend(E.GENERAL).stream(messages, Sampling(max_new_tokens=8)))
    assert len({expected, other, general}) == 3
    with pytest.raises(KeyError):
        moa.backend("text")


def test_committed_adapters_beat_the_base_model_on_their_own_domain():
    """Read from the committed runs (metrics.json per adapter, measured on held-out data the adapter never
    saw): math by exact answers, the others by the loss on the answer tokens."""
    for domain in E.DOMAINS:
        m = json.loads((E.ADAPTERS_DIR / domain / "metrics.json").read_text())
        for name, base in m["base"].items():
            tuned = m["adapter"][name]
            assert tuned["loss"] < base["loss"], (domain, name)
            if domain == "math":
                assert tuned["exact"] >= base["exact"] + 0.2, (name, base["exact"], tuned["exact"])


@pytest.mark.model
@pytest.mark.slow
def test_committed_mixture_on_smollm2_routes_and_answers_as_the_expert():
    """What month 6 loads: SmolLM2 once, the four committed adapters resident, the committed router."""
    moa = E.MixtureOfAdapters.load()
    assert set(moa.adapter_bytes().values()) == {921_600 * 4}  # r=8 on q/k/v/o: 0.92M fp32 numbers each
    ids = moa.tokenizer.apply_chat_template([{"role": "user", "content": "What is 12 + 30?"}],
                                            add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        last = {}
        for expert in (*E.DOMAINS, E.GENERAL):
            with moa.use(expert):
                last[expert] = moa.model(**ids).logits[0, -1]
    assert all((last[a] - last[E.GENERAL]).abs().max() > 0.1 for a in E.DOMAINS)  # each adapter changes the model
    result = moa.route_and_generate("What is 12 + 30?", Sampling(max_new_tokens=24))
    assert result.expert == "math" and result.probability > 0.9
    assert result.answer == "12 + 30 = 42. The answer is 42.", result  # the math expert's worked format
