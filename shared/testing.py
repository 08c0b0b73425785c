"""Helpers for the project's own tests (not for learners)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_graded(
    month: str, impl: Path | str | None, tmp_path: Path, *extra: str, timeout: int = 600
) -> tuple[subprocess.CompletedProcess, dict]:
    """Run a month's graded suite in a fresh pytest process; returns (process, score JSON)."""
    score = tmp_path / "score.json"
    cmd = [sys.executable, "-m", "pytest", month, "-q", "-p", "no:cacheprovider", "--score-json", str(score)]
    if impl is not None:
        cmd += ["--impl", str(impl)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HYBRID_AI_THREADS": "1"}
    proc = subprocess.run(
        [*cmd, *extra], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, env=env
    )
    data = json.loads(score.read_text()) if score.exists() else {}
    return proc, data
