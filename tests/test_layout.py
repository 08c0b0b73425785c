"""The monorepo's shape: six month packages, each importable, documented, with a --help."""

import subprocess
import sys
from pathlib import Path

import pytest

from shared.grading import MONTHS

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("month", MONTHS)
def test_month_package_has_readme_tests_and_help(month):
    folder = ROOT / month
    assert (folder / "README.md").is_file() and (folder / "tests" / "__init__.py").is_file()
    result = subprocess.run([sys.executable, "-m", month, "--help"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "usage: python -m " + month in result.stdout


def test_project_code_never_reads_the_workplace_shared_folder():
    """A user's clone has no ../shared: only benchmarks may mention it."""
    folders = [ROOT / name for name in (*MONTHS, "shared", "tests", "scripts")]
    offenders = [
        str(p.relative_to(ROOT))
        for folder in folders
        for p in folder.rglob("*.py")
        if p.name != "test_layout.py" and "../shared" in p.read_text(encoding="utf-8", errors="ignore")
    ]
    assert not offenders
