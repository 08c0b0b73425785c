"""The assistant as a Ray Serve application: N replicas of `create_app(settings)`, each a Ray actor behind
Serve's HTTP proxy, with replica-count autoscaling on requests in flight.

    python -m month6_system serve-ray --replicas 2                       # a local Ray, http://127.0.0.1:8000
    python -m month6_system serve-ray --min-replicas 1 --max-replicas 4  # autoscaling
    ray start --head ... ; python -m month6_system serve-ray --address auto   # on an existing cluster
    serve run month6_system.ray_serve:app_builder replicas=2            # Ray's own CLI (and KubeRay's RayService)

Replicas hold no state of their own once the settings name external stores: `database_url` (PostgreSQL: the
transcript, traces, API keys, rate limits), `chroma_url` (month 5's documents), and optionally `upstream_url`
(a vLLM server writes the answers). Without them each replica keeps its own SQLite files in `data_dir`, which
is right for one machine only. Each replica loads its own models (SmolLM2 + adapters: about 1 GB) and runs
torch with `threads` threads: replicas x threads should not exceed the machine's cores.
"""

from __future__ import annotations

import argparse
import importlib
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from month6_system.settings import Settings, load_settings
from shared.config import add_config_arguments, config_from_args

# A local test cluster: no token auth between its own processes (Ray 2.60 turns it on by default), no usage report,
# sockets on loopback only.
LOCAL_RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


@dataclass
class ScaleConfig:
    replicas: int = field(default=2, metadata={"help": "fixed replica count (ignored when max_replicas is set)"})
    min_replicas: int = field(default=1, metadata={"help": "autoscaling: the fewest replicas"})
    max_replicas: int = field(default=0, metadata={"help": "autoscaling: the most replicas (0: no autoscaling)"})
    target_ongoing_requests: float = field(default=4.0, metadata={"help": "autoscaling: requests in flight per "
                                                                         "replica it aims for"})
    max_ongoing_requests: int = field(default=16, metadata={"help": "requests one replica takes at once (the "
                                                                    "batcher's batch size is a good value)"})
    num_cpus: float = field(default=1.0, metadata={"help": "CPUs Ray reserves for each replica"})
    threads: int = field(default=1, metadata={"help": "torch threads in each replica"})
    assistant: str = field(default="", metadata={"help": "module:callable that builds each replica's assistant "
                                                         "from its settings (default: the real one)"})

    def __post_init__(self) -> None:
        if self.replicas < 1 or self.min_replicas < 0 or self.max_replicas < 0 or self.threads < 1:
            raise ValueError("replica and thread counts must be positive")
        if self.max_replicas and self.max_replicas < max(1, self.min_replicas):
            raise ValueError(f"max_replicas {self.max_replicas} is below min_replicas {self.min_replicas}")
        if self.num_cpus <= 0 or self.max_ongoing_requests < 1 or self.target_ongoing_requests <= 0:
            raise ValueError("num_cpus, max_ongoing_requests and target_ongoing_requests must be positive")

    def deployment_options(self) -> dict[str, Any]:
        """`serve.deployment(...)`'s options: replicas or autoscaling, and each replica's CPUs and threads."""
        threads = str(self.threads)
        options: dict[str, Any] = {
            "max_ongoing_requests": self.max_ongoing_requests,
            "ray_actor_options": {"num_cpus": self.num_cpus, "runtime_env": {"env_vars": {
                "OMP_NUM_THREADS": threads, "HYBRID_AI_THREADS": threads, "TOKENIZERS_PARALLELISM": "false"}}},
            "health_check_period_s": 5, "graceful_shutdown_timeout_s": 30}
        if self.max_replicas:
            options["autoscaling_config"] = {"min_replicas": self.min_replicas, "max_replicas": self.max_replicas,
                                             "target_ongoing_requests": self.target_ongoing_requests}
        else:
            options["num_replicas"] = self.replicas
        return options


def load_callable(path: str) -> Any:
    """`module:name` -> the object (a replica's assistant factory)."""
    module, _, name = path.partition(":")
    if not module or not name:
        raise ValueError(f"expected module:callable, got {path!r}")
    return getattr(importlib.import_module(module), name)


def _replica_class():
    from ray import serve

    @serve.ingress()  # late-bound: each replica builds its own app in its own process
    class AssistantReplica:
        def __init__(self, settings: dict[str, Any], assistant: str = "") -> None:
            self.settings, self.factory = Settings(**settings), assistant

        def __serve_build_asgi_app__(self):
            from month6_system.app import create_app

            assistant = load_callable(self.factory)(self.settings) if self.factory else None
            self.hybrid = create_app(self.settings, assistant)  # None: the real assistant loads in the background
            return self.hybrid

        def check_health(self) -> None:
            """Ray restarts a replica whose assistant failed to load (still loading is healthy)."""
            error = self.hybrid.state.hybrid.load_error if hasattr(self, "hybrid") else None
            if error:
                raise RuntimeError(error)

    return AssistantReplica


def build(settings: Settings, scale: ScaleConfig):
    """The Serve application, ready for `serve.run(app, route_prefix="/")`."""
    from ray import serve

    deployment = serve.deployment(_replica_class(), name="assistant", **scale.deployment_options())
    return deployment.bind(settings.model_dump(mode="json"), scale.assistant)


def app_builder(args: dict[str, Any]):
    """The application for Ray's own `serve run month6_system.ray_serve:app_builder key=value ...` and for a
    RayService's `import_path`: `args` are ScaleConfig fields; the settings come from `HYBRID_*` variables
    (as in the Kubernetes Deployment) or their file."""
    names = {f.name: f.type for f in fields(ScaleConfig)}
    unknown = sorted(set(args) - set(names))
    if unknown:
        raise ValueError(f"unknown argument(s) {unknown}: the ScaleConfig fields are {sorted(names)}")
    kinds = {"int": int, "float": float, "str": str}
    scale = ScaleConfig(**{k: kinds[names[k]](v) for k, v in args.items()})  # `serve run` passes strings
    return build(load_settings(), scale)


def start_local(settings: Settings, scale: ScaleConfig, address: str = "", num_cpus: int | None = None,
                blocking: bool = False) -> str:
    """Ray (a new local one, or `address`), Serve's proxy on settings.host:port, the app; the base URL."""
    for name, value in LOCAL_RAY_ENV.items():
        os.environ.setdefault(name, value)
    import ray
    from ray import serve

    if not ray.is_initialized():
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                     _node_ip_address="127.0.0.1")
    serve.start(http_options={"host": settings.host, "port": settings.port})
    serve.run(build(settings, scale), name="assistant", route_prefix="/", blocking=blocking)
    return f"http://{settings.host}:{settings.port}"


def stop() -> None:
    import ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


# -- the command: python -m month6_system serve-ray ------------------------------------------------------
SETTINGS_FLAGS = ("host", "port", "data_dir", "database_url", "chroma_url", "upstream_url")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from month6_system.serve import add_setting_arguments

    add_config_arguments(parser.add_argument_group("replicas"), ScaleConfig)
    add_setting_arguments(parser.add_argument_group("settings (also HYBRID_* variables)"), SETTINGS_FLAGS)
    parser.add_argument("--address", default="", help="an existing Ray cluster (auto: the one `ray start` made "
                                                      "here; default: start a local one)")


def main(args: argparse.Namespace) -> None:
    scale = config_from_args(ScaleConfig, args)
    settings = load_settings(**{n: getattr(args, n) for n in SETTINGS_FLAGS if getattr(args, n) is not None})
    shape = (f"{scale.min_replicas}-{scale.max_replicas} replicas (autoscaling)" if scale.max_replicas
             else f"{scale.replicas} replica(s)")
    print(f"month6_system: Ray Serve, {shape}, {scale.threads} torch thread(s) each, at "
          f"http://{settings.host}:{settings.port}/v1; state in "
          f"{'PostgreSQL' if settings.database_url else f'SQLite per replica under {settings.data_dir}'}; "
          f"Ctrl-C stops", flush=True)
    print(f"month6_system: replica options {asdict(scale)}", flush=True)
    try:
        start_local(settings, scale, address=args.address, blocking=True)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
