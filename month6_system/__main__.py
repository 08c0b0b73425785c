"""python -m month6_system {demo,serve,serve-ray,ingest,keys} --help"""

from __future__ import annotations

from shared.cli import Command, run_subcommands

COMMANDS = {
    "demo": Command("month6_system.demo", "the product demo: the assistant, its documents and a scripted conversation "
                                          "through the HTTP API, with traces"),
    "serve": Command("month6_system.serve", "serve the assistant over its OpenAI-compatible HTTP API (uvicorn)"),
    "ingest": Command("month6_system.ingest", "add PDF / Word / text documents to the assistant's store"),
    "serve-ray": Command("month6_system.ray_serve", "serve the assistant as a Ray Serve application: replicas, "
                                                    "autoscaling, state shared in PostgreSQL (the [scale] extra)"),
    "keys": Command("month6_system.keys", "create, revoke and list API keys (each key is its own scope of data)"),
}


def main(argv: list[str] | None = None) -> None:
    run_subcommands("python -m month6_system",
                    "Month 6: the Enterprise Hybrid Assistant - an OpenAI-compatible server over the hybrid agent.",
                    COMMANDS, argv)


if __name__ == "__main__":
    main()
