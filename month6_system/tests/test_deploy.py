"""The deployment files (month6_system/deploy/) against what they deploy: the Kubernetes manifests validate
against the Kubernetes schemas (kubernetes-validate, strict), every HYBRID_* variable they, the compose file and
the Dockerfile set is a setting whose value the assistant accepts, the probes hit routes the app serves, and
the image installs the torch pin and sources that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from month6_system.agent import rag_config
from month6_system.settings import Settings

kubernetes_validate = pytest.importorskip("kubernetes_validate")
DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
ROOT = DEPLOY.parents[1]
KUBERNETES = "1.30"
RUNTIME_ENV = {"HYBRID_AI_THREADS"}  # shared.runtime's torch threads, not a server setting


def manifests() -> list[dict]:
    return [doc for path in sorted((DEPLOY / "k8s").glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())
            if doc]


def test_every_manifest_validates_against_the_kubernetes_schemas():
    kinds = []
    for doc in manifests():
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)  # raises on an unknown or mistyped field
        kinds.append(doc["kind"])
    assert {"ConfigMap", "Secret", "Deployment", "Service", "HorizontalPodAutoscaler", "StatefulSet"} <= set(kinds)


def test_a_misspelt_field_is_caught():
    deployment = next(doc for doc in manifests() if doc["kind"] == "Deployment")
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def check_environment(env: dict[str, str], monkeypatch) -> Settings:
    unknown = {k for k in env if k.startswith("HYBRID_") and k not in RUNTIME_ENV
               and k.removeprefix("HYBRID_").lower() not in Settings.model_fields}
    assert not unknown, f"not settings: {unknown}"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()  # a bad value raises here


def test_the_config_map_compose_and_image_set_only_valid_settings(monkeypatch):
    config = next(doc for doc in manifests() if doc["kind"] == "ConfigMap")["data"]
    settings = check_environment(config, monkeypatch)
    assert settings.host == "0.0.0.0" and settings.api_keys == "required"
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    check_environment(compose["services"]["assistant"]["environment"], monkeypatch)
    image_env = re.search(r"^ENV (.+)$", (DEPLOY / "Dockerfile").read_text(), re.M).group(1)
    check_environment(dict(pair.split("=", 1) for pair in image_env.split()), monkeypatch)


def test_probes_hit_routes_the_app_serves():
    from month6_system.app import create_app
    from month6_system.tests.conftest import ScriptedAssistant

    served = {route.path for route in create_app(Settings(), ScriptedAssistant()).routes}
    deployment = next(doc for doc in manifests() if doc["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    probes = [container[name]["httpGet"]["path"] for name in ("startupProbe", "readinessProbe", "livenessProbe")]
    assert probes == ["/readyz", "/readyz", "/healthz"] and set(probes) <= served


def test_the_image_installs_the_torch_pin_and_existing_sources():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    pin = re.search(r'"(torch==[^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert f"pip install --no-cache-dir {pin} --index-url https://download.pytorch.org/whl/cpu" in dockerfile
    for source in re.findall(r"^COPY (\S+)", dockerfile, re.M):
        assert (ROOT / source).exists(), source
    assert 'CMD ["python", "-m", "month6_system", "serve"]' in dockerfile


def test_chroma_url_selects_month_5s_chroma_server(tmp_path):
    embedded = rag_config(Settings(data_dir=tmp_path))
    assert embedded.store == "chroma" and embedded.store_dir == str(tmp_path / "store")
    served = rag_config(Settings(data_dir=tmp_path, chroma_url="http://chroma:8001"))
    assert (served.store, served.host, served.port) == ("chroma-http", "chroma", 8001)
    with pytest.raises(ValueError):
        Settings(chroma_url="chroma:8000")  # a URL, with its scheme
