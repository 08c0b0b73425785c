"""A throwaway PostgreSQL server on loopback, for tests and benchmarks: Debian's `postgresql` binaries,
a fresh cluster in a temporary folder, a free port, stopped and deleted at the end.

    with temporary_postgres() as url:      # postgresql://assistant@127.0.0.1:PORT/assistant
        db = shared.sql.connect(url)

As root (CI), the server runs as the `postgres` user (PostgreSQL refuses root). fsync is off: nothing here
outlives the block, so durability is not what is tested (the SQLite store's kill -9 test covers that).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.errors import UserError

USER = DATABASE = "assistant"


def bindir() -> Path:
    """Where initdb and pg_ctl are (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    raise UserError("PostgreSQL is not installed: apt-get install postgresql (the scale tests need its server)")


def installed() -> bool:
    """Whether this machine has PostgreSQL's server binaries (tests that need one skip without them)."""
    try:
        bindir()
    except UserError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def temporary_postgres(timeout_s: float = 60.0) -> Iterator[str]:
    bin_ = bindir()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="pg-"))
    if as_postgres:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", free_port()

    def run(*cmd: str) -> None:
        done = subprocess.run([*as_postgres, *cmd], capture_output=True, text=True, timeout=timeout_s)
        if done.returncode:
            raise RuntimeError(f"{Path(cmd[0]).name} failed ({done.returncode}): {(done.stderr or done.stdout)[-800:]}")

    try:
        run(str(bin_ / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-h 127.0.0.1 -p {port} -k {root} -F -c max_connections=50"
        run(str(bin_ / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w",
            "-t", str(int(timeout_s)), "start")
        try:
            run(str(bin_ / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, DATABASE)
            yield f"postgresql://{USER}@127.0.0.1:{port}/{DATABASE}"
        finally:
            subprocess.run([*as_postgres, str(bin_ / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=timeout_s)
    finally:
        shutil.rmtree(root, ignore_errors=True)
