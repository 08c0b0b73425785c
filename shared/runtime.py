"""Device, thread and seed selection.

Threads matter on small machines: on 2 shared cores, torch with 2 OpenMP threads next
to another busy process ran several times slower than with 1 (see benchmarks/threads.py).
So the default is deliberate, not torch's "all cores".
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

THREADS_ENV = "HYBRID_AI_THREADS"
DEVICE_ENV = "HYBRID_AI_DEVICE"


def pick_device(preferred: str | None = None) -> torch.device:
    """cuda, then mps, then cpu; `preferred` or $HYBRID_AI_DEVICE override."""
    choice = preferred or os.environ.get(DEVICE_ENV)
    if choice and choice != "auto":
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bf16 matmuls beat fp32 on this device, detected at run time: a CUDA GPU with
    bf16, or a CPU with AVX-512 BF16 or AMX tiles (machines differ; never assume one)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, name, lambda: False)() for name in probes)
    return False


def default_threads() -> int:
    """Threads for torch intra-op work.

    $HYBRID_AI_THREADS wins, then $OMP_NUM_THREADS. Otherwise: all cores when the machine
    is idle, else one fewer than the cores, so a second busy process does not make OpenMP
    threads fight.
    """
    for name in (THREADS_ENV, "OMP_NUM_THREADS"):
        env = os.environ.get(name)
        if env:
            return max(1, int(env))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    busy = load1 > 0.75 * cores
    return max(1, cores - 1) if busy else cores


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads (and inter-op to 1); returns the number used."""
    n = n or default_threads()
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # can only be set once, before any parallel work
        pass
    return n


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


QUICK_ENV = "HYBRID_AI_QUICK"


def quick_mode() -> bool:
    """True when $HYBRID_AI_QUICK is set (CI runs notebooks this way: fewer steps, same code)."""
    return os.environ.get(QUICK_ENV, "0") not in ("0", "", "false", "False")
