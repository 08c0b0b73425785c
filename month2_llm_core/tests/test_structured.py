"""Constrained JSON decoding (structured.py): every answer parses and validates against its schema, with the
real SmolLM2, where the same prompt unconstrained is prose; the mask alone forces random logits into the
grammar; schemas that cannot constrain decoding are refused with llguidance's reason."""

import json

import jsonschema
import pytest
import torch

from month2_llm_core.chat import Sampling, TransformersBackend
from month2_llm_core.inference import eos_ids
from month2_llm_core.structured import ANY_OBJECT, JsonConstraint, schema_error

pytestmark = pytest.mark.model

TRIP = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                                         "sights": {"type": "array", "items": {"type": "string"}, "maxItems": 3}},
        "required": ["city", "days", "sights"], "additionalProperties": False}
PERSON = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}


def ask(text: str, schema: dict | None) -> list[dict[str, str]]:
    system = "You are a helpful assistant." + (f" Answer with one JSON object following this JSON schema: "
                                               f"{json.dumps(schema)}" if schema else "")
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


@pytest.mark.parametrize("fast", [False, True])  # the fast decoder has no logits hook: constrained runs bypass it
def test_answers_validate_against_their_schema_where_free_decoding_writes_prose(smollm2, fast):
    model, tokenizer = smollm2
    backend = TransformersBackend(model, tokenizer, fast=fast)
    free = "".join(backend.stream(ask("Plan a trip to Kyoto as JSON.", None), Sampling(max_new_tokens=24)))
    with pytest.raises(json.JSONDecodeError):
        json.loads(free)
    answers = {}
    for schema, text in [(TRIP, "Plan a trip to Kyoto."), (PERSON, "Maria Lopez is 34 years old."),
                         (ANY_OBJECT, "Give the capital of France as a JSON object.")]:
        out = "".join(backend.stream(ask(text, schema), Sampling(max_new_tokens=96, json_schema=schema)))
        answers[text] = json.loads(out)
        jsonschema.validate(answers[text], schema)
    # the form is the grammar's, the content the model's
    assert answers["Maria Lopez is 34 years old."] == {"name": "Maria Lopez", "age": 34}


def test_the_mask_alone_turns_random_logits_into_valid_json(smollm2_tokenizer):
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}, "level": {"enum": ["low", "high"]}},
              "required": ["ok", "level"], "additionalProperties": False}
    eos = smollm2_tokenizer.eos_token_id
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        constraint, ids = JsonConstraint(smollm2_tokenizer, schema), []
        while not ids or ids[-1] != eos:
            logits = torch.randn(1, len(smollm2_tokenizer), generator=generator)
            constraint.mask_(logits)
            assert torch.isfinite(logits).sum() >= 1
            ids.append(int(logits.argmax()))
            constraint.consume(ids[-1])
            assert len(ids) < 40
        value = json.loads(smollm2_tokenizer.decode(ids, skip_special_tokens=True))
        jsonschema.validate(value, schema)
        assert constraint.complete


def test_stream_stops_at_the_end_of_the_value(smollm2):
    from month2_llm_core.inference import chat_input_ids, stream_tokens

    model, tokenizer = smollm2
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"],
              "additionalProperties": False}
    ids = chat_input_ids(tokenizer, "What is 2 + 2? Reply as JSON with the key answer.")
    eos = eos_ids(model, tokenizer)
    tokens = list(stream_tokens(model, ids, 40, eos, constraint=JsonConstraint(tokenizer, schema)))
    assert tokens[-1] in eos and len(tokens) < 40
    assert set(json.loads(tokenizer.decode(tokens, skip_special_tokens=True))) == {"answer"}


@pytest.mark.parametrize("schema, why", [
    ({"type": "string", "pattern": "(?<=x)a"}, "look-around"),
    ({"$ref": "#/definitions/nope"}, "does not exist"),
    ({"type": "integer", "minimum": 5, "maximum": 2}, "Unsatisfiable"),
])
def test_schemas_that_cannot_constrain_decoding_are_refused_with_the_reason(smollm2_tokenizer, schema, why):
    assert why in schema_error(smollm2_tokenizer, schema)
    with pytest.raises(ValueError, match="cannot constrain"):
        JsonConstraint(smollm2_tokenizer, schema)
    assert schema_error(smollm2_tokenizer, PERSON) == ""
