"""The chat's choice of greedy decode path: measured once per machine (with a fake clock here), cached, overridable."""

import json

import pytest

from month2_llm_core import decode_path
from month2_llm_core.decode_path import DECODE_PATH_ENV, fastest_correct, resolve_decode_path
from month2_llm_core.inference import Timing
from shared.errors import UserError


class FakeClock:
    """A timer that only moves when a fake runner "decodes": `cost` seconds per token."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def runner(self, cost: float, tokens: list[int]):
        def run(prompt: str) -> list[int]:
            self.now += cost * len(tokens)
            return tokens

        return run


def fake_runners(clock, fp16_cost, speculative_cost, speculative_tokens=(1, 2, 3)):
    built = []

    def runners():
        built.append(True)
        return {"fp16": clock.runner(fp16_cost, [1, 2, 3]),
                "speculative": clock.runner(speculative_cost, list(speculative_tokens))}

    return runners, built


@pytest.fixture(autouse=True)
def no_env_choice(monkeypatch):
    monkeypatch.delenv(DECODE_PATH_ENV, raising=False)


@pytest.mark.parametrize("fp16_cost, speculative_cost, expected", [(0.03, 0.02, "speculative"),
                                                                   (0.02, 0.03, "fp16"),
                                                                   (0.02, 0.02, "fp16")])  # a tie: no draft
def test_the_faster_path_is_chosen(tmp_path, fp16_cost, speculative_cost, expected):
    clock = FakeClock()
    runners, _ = fake_runners(clock, fp16_cost, speculative_cost)
    assert resolve_decode_path("auto", "cpu-x", runners, tmp_path / "paths.json", timer=clock) == expected


def test_a_path_with_other_tokens_is_never_chosen_however_fast():
    fast_but_wrong = {"fp16": Timing(tokens=3, seconds=3.0, outputs=[[1, 2, 3]]),
                      "speculative": Timing(tokens=3, seconds=1.0, outputs=[[1, 2, 4]])}
    assert fastest_correct(fast_but_wrong) == "fp16"


def test_the_cache_is_used_the_second_time_per_machine_key(tmp_path):
    cache = tmp_path / "paths.json"
    clock = FakeClock()
    runners, built = fake_runners(clock, 0.03, 0.02)
    assert resolve_decode_path("auto", "cpu-x", runners, cache, timer=clock) == "speculative"
    assert len(built) == 1
    record = json.loads(cache.read_text())["cpu-x"]
    assert record["path"] == "speculative" and record["same_tokens"] is True
    assert record["tokens_per_s"]["speculative"] > record["tokens_per_s"]["fp16"]
    # Second use: no measurement, even if the clock would now say otherwise.
    slower, built_again = fake_runners(clock, 0.01, 0.05)
    assert resolve_decode_path("auto", "cpu-x", slower, cache, timer=clock) == "speculative"
    assert not built_again
    # Another machine key (another CPU, thread count or torch) is measured on its own.
    assert resolve_decode_path("auto", "cpu-y", slower, cache, timer=clock) == "fp16"
    assert built_again and set(json.loads(cache.read_text())) == {"cpu-x", "cpu-y"}


def test_an_unreadable_cache_means_measuring_again(tmp_path):
    cache = tmp_path / "paths.json"
    cache.write_text("{not json")
    clock = FakeClock()
    runners, built = fake_runners(clock, 0.02, 0.03)
    assert resolve_decode_path("auto", "cpu-x", runners, cache, timer=clock) == "fp16" and built


def test_the_option_and_the_environment_override_the_measurement(tmp_path, monkeypatch):
    def never():
        raise AssertionError("measured although the path was given")

    cache = tmp_path / "paths.json"
    assert resolve_decode_path("fp16", "cpu-x", never, cache) == "fp16"
    monkeypatch.setenv(DECODE_PATH_ENV, "speculative")
    assert resolve_decode_path("auto", "cpu-x", never, cache) == "speculative"
    assert resolve_decode_path("fp16", "cpu-x", never, cache) == "fp16"  # the option wins over the variable
    monkeypatch.setenv(DECODE_PATH_ENV, "fastest")
    with pytest.raises(UserError, match=r"\$HYBRID_AI_DECODE_PATH 'fastest': choose one of auto, fp16, speculative"):
        resolve_decode_path("auto", "cpu-x", never, cache)
    assert not cache.exists()


def test_the_machine_key_names_cpu_threads_torch_and_model():
    import torch

    key = decode_path.machine_key("smollm2")
    assert decode_path.cpu_model_name() in key and f"threads {torch.get_num_threads()}" in key
    assert torch.__version__ in key and key.endswith("smollm2")


@pytest.mark.model
def test_the_chat_measures_its_real_decoder_once(smollm2, tmp_path, monkeypatch):
    """End to end on SmolLM2 with a short measurement: a choice is made, cached, and reused."""
    from month2_llm_core.chat import TransformersBackend

    monkeypatch.setenv("HYBRID_AI_CACHE", str(tmp_path))
    monkeypatch.setattr(decode_path, "MEASURE_TOKENS", 4)
    model, tokenizer = smollm2
    first = TransformersBackend(model, tokenizer, "smollm2", fast=True)
    record = json.loads((tmp_path / "decode" / "paths.json").read_text())[decode_path.machine_key("smollm2")]
    assert record["same_tokens"] is True
    expected = {"speculative": "speculative fp16 + int4 draft", "fp16": "fp16 decoder"}[record["path"]]
    assert first.name == f"transformers:smollm2, {expected}"
    assert (first.decoder.draft is not None) == (record["path"] == "speculative")
    monkeypatch.setattr(decode_path, "time_round_robin", None)  # a second measurement would fail
    assert TransformersBackend(model, tokenizer, "smollm2", fast=True).name == first.name
