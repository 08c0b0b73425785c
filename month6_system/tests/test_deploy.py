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


# -- KubeRay's RayService (deploy/kuberay/) ------------------------------------------------------------------
KUBERAY = DEPLOY / "kuberay"


def kuberay_docs() -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all((KUBERAY / "rayservice.yaml").read_text()) if doc}


def rayservice_schema() -> dict:
    """KubeRay's RayService v1 schema (its CRD's openAPIV3Schema, descriptions removed; the source is inside)."""
    import gzip
    import json

    return json.loads(gzip.decompress((KUBERAY / "rayservice-v1.schema.json.gz").read_bytes()))["openAPIV3Schema"]


def unknown_fields(doc, schema: dict, path: str = "") -> list[str]:
    """Fields the schema does not define (the API server's strict field validation; jsonschema alone lets them
    through, as a CRD schema rarely says additionalProperties: false)."""
    if isinstance(doc, list):
        return [e for i, item in enumerate(doc) for e in unknown_fields(item, schema.get("items", {}), f"{path}[{i}]")]
    if not isinstance(doc, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if "properties" in schema:
        props = schema["properties"]
        return [e for key, value in doc.items() for e in
                ([f"{path}.{key}"] if key not in props else unknown_fields(value, props[key], f"{path}.{key}"))]
    if isinstance(schema.get("additionalProperties"), dict):
        return [e for key, value in doc.items()
                for e in unknown_fields(value, schema["additionalProperties"], f"{path}.{key}")]
    return []


def check_rayservice(doc: dict) -> None:
    import jsonschema

    schema = rayservice_schema()
    jsonschema.Draft7Validator(schema).validate(doc)  # types, required fields, enums
    unknown = unknown_fields(doc, schema)
    if unknown:
        raise ValueError(f"fields the RayService schema does not define: {unknown}")
    cluster = doc["spec"]["rayClusterConfig"]
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:  # the pods, by Kubernetes' own schema
        pod = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": group["template"]}
        kubernetes_validate.validate(pod, KUBERNETES, strict=True)


def test_the_rayservice_validates_against_kuberays_schema_and_the_pod_schemas():
    docs = kuberay_docs()
    check_rayservice(docs["RayService"])
    kubernetes_validate.validate(docs["ConfigMap"], KUBERNETES, strict=True)


@pytest.mark.parametrize("where, field", [("spec", "serveConfig"), ("rayClusterConfig", "enableInTreeAutoscale"),
                                          ("worker", "replica")])
def test_a_misspelt_rayservice_field_is_caught(where, field):
    doc = kuberay_docs()["RayService"]
    target = {"spec": doc["spec"], "rayClusterConfig": doc["spec"]["rayClusterConfig"],
              "worker": doc["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]}[where]
    target[field] = "2"
    with pytest.raises(ValueError, match=rf"\.{field}'"):
        check_rayservice(doc)


def test_the_rayservice_serves_this_projects_application(monkeypatch):
    """Its Serve config passes Ray's own schema, its import path is ray_serve.app_builder and its args build the
    application; its pods' variables are settings the assistant accepts."""
    serve_schema = pytest.importorskip("ray.serve.schema")
    from month6_system import ray_serve

    docs = kuberay_docs()
    config = serve_schema.ServeDeploySchema(**yaml.safe_load(docs["RayService"]["spec"]["serveConfigV2"]))
    [app] = config.applications
    module, _, name = app.import_path.partition(":")
    assert (module, name) == ("month6_system.ray_serve", "app_builder")
    settings = check_environment({**docs["ConfigMap"]["data"],
                                  "HYBRID_DATABASE_URL": "postgresql://assistant@db:5432/assistant"}, monkeypatch)
    assert settings.database_url and settings.chroma_url  # replicas keep no state of their own
    monkeypatch.setenv("HYBRID_DATABASE_URL", "postgresql://assistant@db:5432/assistant")
    built = ray_serve.app_builder(app.args)._bound_deployment  # args as strings, as `serve run` passes them
    assert built._deployment_config.autoscaling_config.max_replicas == 8
    assert built.ray_actor_options["num_cpus"] == 2
    assert built.init_args[0]["database_url"] == "postgresql://assistant@db:5432/assistant"  # settings from env
    with pytest.raises(ValueError, match="unknown argument"):
        ray_serve.app_builder({"replica": "2"})
