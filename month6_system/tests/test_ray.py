"""The assistant as a Ray Serve application (ray_serve.py) on a local Ray cluster this module starts (loopback
only, 2 CPUs): 2 replicas of the scripted assistant share a throwaway PostgreSQL server, and test_openai_sdk.py's
conformance tests run unchanged against Serve's proxy (their column `ray x2` of the conformance table). Then what
only replicas have: requests spread over both processes, a trace written by one replica served by the other, a
killed replica replaced while the other keeps answering. (The RayService's import path: test_deploy.py.)"""

from __future__ import annotations

import os
import time

import httpx
import pytest

pytest.importorskip("ray.serve")
pytest.importorskip("psycopg")

from month6_system import ray_serve  # noqa: E402
from month6_system.settings import Settings  # noqa: E402
from month6_system.tests.conftest import LiveServer, ScriptedWithRecords  # noqa: E402
from month6_system.tests.test_openai_sdk import *  # noqa: E402,F403  (the same tests, against this module's server)
from month6_system.tests.test_openai_sdk import MODEL, ask  # noqa: E402
from shared.postgres_server import free_port, installed, temporary_postgres  # noqa: E402

CONFORMANCE_COLUMN = "ray x2"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not installed(), reason="no PostgreSQL server (.ci/run installs it)")]


def scripted(settings: Settings) -> ScriptedWithRecords:
    """Each replica's assistant (ScaleConfig.assistant = "month6_system.tests.test_ray:scripted")."""
    return ScriptedWithRecords(settings.data_dir, settings.database_url)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    with temporary_postgres() as database_url:
        settings = Settings(data_dir=tmp_path_factory.mktemp("ray-data"), port=free_port(), database_url=database_url,
                            rate_limit_per_minute=0)
        scale = ray_serve.ScaleConfig(replicas=2, num_cpus=0.5, assistant="month6_system.tests.test_ray:scripted")
        url = ray_serve.start_local(settings, scale, num_cpus=2)
        try:
            yield LiveServer(url, None, None)
        finally:
            ray_serve.stop()


def served_by(url: str, n: int) -> list[tuple[int, str]]:
    """(replica pid, trace id) of n plain requests."""
    out = []
    for i in range(n):
        body = httpx.post(f"{url}/v1/chat/completions", json={"model": MODEL, "messages": ask(f"who {i}")},
                          timeout=60).raise_for_status().json()
        out.append((body["trace"]["pid"], body["trace_id"]))
    return out


def test_requests_spread_over_both_replicas(live_server):
    pids = {pid for pid, _ in served_by(live_server.url, 16)}
    assert len(pids) == 2 and os.getpid() not in pids  # two replica processes, neither of them this one


def test_a_trace_written_by_one_replica_is_served_by_any(live_server):
    [(pid, trace_id)] = served_by(live_server.url, 1)
    got = [httpx.get(f"{live_server.url}/v1/traces/{trace_id}", timeout=30) for _ in range(12)]
    assert [r.status_code for r in got] == [200] * 12  # the proxy sent some of these to the other replica
    assert {r.json()["trace"]["pid"] for r in got} == {pid}


def test_a_killed_replica_is_replaced_and_the_other_keeps_serving(live_server):
    import ray
    from ray import serve

    before = {pid for pid, _ in served_by(live_server.url, 12)}
    [victim] = [a for a in ray.util.list_named_actors(all_namespaces=True)
                if a["name"].startswith("SERVE_REPLICA::assistant#assistant")][:1]
    ray.kill(ray.get_actor(victim["name"], namespace=victim["namespace"]), no_restart=True)
    answered, deadline = set(), time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            answered |= {pid for pid, _ in served_by(live_server.url, 4)}
        except httpx.HTTPError:
            pass  # a request routed to the dead replica before the controller noticed
        status = serve.status().applications["assistant"].deployments["assistant"]
        if len(answered - before) >= 1 and status.replica_states.get("RUNNING") == 2:
            break
        time.sleep(1)
    assert answered & before  # the surviving replica answered all along
    assert answered - before  # and a new process took the killed one's place
    assert serve.status().applications["assistant"].deployments["assistant"].replica_states == {"RUNNING": 2}


def test_scale_config_options():
    fixed = ray_serve.ScaleConfig(replicas=3, threads=2).deployment_options()
    assert fixed["num_replicas"] == 3 and "autoscaling_config" not in fixed
    assert fixed["ray_actor_options"]["runtime_env"]["env_vars"]["OMP_NUM_THREADS"] == "2"
    auto = ray_serve.ScaleConfig(min_replicas=1, max_replicas=4, target_ongoing_requests=2).deployment_options()
    assert "num_replicas" not in auto
    assert auto["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 2}
    for bad in ({"replicas": 0}, {"min_replicas": 3, "max_replicas": 2}, {"threads": 0}, {"num_cpus": 0}):
        with pytest.raises(ValueError):
            ray_serve.ScaleConfig(**bad)
