"""The upstream generator (upstream.py) against a live OpenAI-compatible server on loopback: which model it
asks for, and its errors at load. The real assistant answering through it: test_hybrid_sdk.py."""

from __future__ import annotations

import pytest


def test_an_upstream_that_lacks_the_model_named_is_refused_at_load(tmp_path):
    from month6_system.app import create_app
    from month6_system.serve import start_in_thread
    from month6_system.settings import Settings
    from month6_system.tests.conftest import ScriptedAssistant
    from month6_system.upstream import UpstreamGenerator

    background = start_in_thread(create_app(Settings(data_dir=tmp_path, api_keys="off"), ScriptedAssistant()))
    try:
        with pytest.raises(RuntimeError, match="does not serve 'llama-70b'; it lists hybrid-assistant"):
            UpstreamGenerator(background.url + "/v1", model="llama-70b")
        generator = UpstreamGenerator(background.url + "/v1")
        assert generator.model_for("math") == "hybrid-assistant"  # no math model upstream: the general one
    finally:
        background.stop()
    with pytest.raises(RuntimeError, match="/models"):
        UpstreamGenerator(background.url + "/v1")  # the server is gone
