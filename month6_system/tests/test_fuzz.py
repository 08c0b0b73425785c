"""The API fuzzed from its own OpenAPI schema (schemathesis): for every route, generated valid and invalid
requests must never get a 500, and every response must match the schema the server publishes (status codes,
content types, bodies). Scripted assistant with real records, in process (ASGI); 30 cases a route
(FUZZ_EXAMPLES=500 for a longer run), the same ones each run (derandomized)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402  (schemathesis brings hypothesis)

from month6_system.app import create_app  # noqa: E402
from month6_system.keys import KeyStore  # noqa: E402
from month6_system.settings import Settings  # noqa: E402
from month6_system.tests.conftest import ScriptedWithRecords  # noqa: E402

DATA = Path(tempfile.mkdtemp(prefix="month6-fuzz-"))
KEY = KeyStore(DATA).create("fuzz")  # keys required: schemathesis also checks that a request without one is a 401
app = create_app(Settings(data_dir=DATA, api_keys="required", rate_limit_per_minute=0), ScriptedWithRecords(DATA))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 30)), deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_every_route_answers_within_its_schema_and_never_500(case):
    # An uploaded file's bytes are any bytes: a "wrong type" for its content is still a valid file.
    upload = case.operation.method.upper() == "POST" and case.operation.path == "/v1/documents"
    excluded = [schemathesis.checks.negative_data_rejection] if upload else []
    case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, excluded_checks=excluded)
