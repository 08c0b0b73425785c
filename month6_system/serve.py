"""Serve the assistant over its OpenAI-compatible HTTP API (uvicorn), on loopback by default.

    python -m month6_system serve                     # http://127.0.0.1:8000/v1
    python -m month6_system serve --port 8080 --context-window 4096
    HYBRID_PORT=8080 python -m month6_system serve    # every setting also reads HYBRID_<NAME>

Where a value comes from, first wins: a flag here, `--config FILE` (flat TOML of these options),
an environment variable `HYBRID_<NAME>`, the file named by `HYBRID_CONFIG_FILE` (TOML or JSON),
the embedded default. /readyz answers 200 once the assistant is loaded; chat requests get a 503
until then. Any OpenAI client works: `OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")`.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from month6_system.settings import Settings, load_settings
from shared.errors import UserError

# The settings a command line may set; the others come from env vars or a settings file.
FLAGS = ("host", "port", "data_dir", "model_name", "context_window", "default_max_tokens", "max_body_bytes",
         "embedding_model", "batch_max_size", "log_level")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_setting_arguments(parser, FLAGS)


def add_setting_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, names: tuple[str, ...]) -> None:
    """One `--name` per setting, None unless given (the settings' own sources decide then)."""
    for name in names:
        field = Settings.model_fields[name]
        kind = Path if name == "data_dir" else type(field.default)
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None,
                            help=f"{field.description or ''} (default: {field.default!r})".strip())


def main(args: argparse.Namespace) -> None:
    import uvicorn

    from month6_system.app import create_app

    settings = load_settings(**{n: getattr(args, n) for n in FLAGS if getattr(args, n) is not None})
    print(f"month6_system: serving {settings.model_name} at http://{settings.host}:{settings.port}/v1 "
          f"(data in {settings.data_dir}); Ctrl-C stops", flush=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level)


@dataclass
class Background:
    """A uvicorn server on its own thread (the demo, the notebook and the tests): `url`, `stop()`."""

    server: Any
    thread: threading.Thread
    sock: socket.socket
    url: str

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def start_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0, timeout_s: float = 20.0,
                    log_level: str = "warning") -> Background:
    """Serve `app` on `host:port` (0: a free port) from a daemon thread; returns once it accepts requests."""
    import uvicorn

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {err.strerror} (choose another --port, or 0)") from None
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="uvicorn")
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            sock.close()
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    return Background(server, thread, sock, f"http://{host}:{sock.getsockname()[1]}")
