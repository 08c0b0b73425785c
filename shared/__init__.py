"""The package every month builds on.

runtime (device, threads, seeds, quick mode), config (dataclass -> CLI), training (the
shared loop), checkpoint (atomic saves), plotting (PNG), corpora (offline text), models
(the offline model store), grading and exercises (graded exercises), doctor (install check).
Import the submodule you need: importing `shared` itself loads nothing heavy.
"""

import logging as _logging


def _drop(logger: str, prefix: str) -> None:
    """Silence one known, harmless third-party message (a filter survives the library's own logger setup)."""
    _logging.getLogger(logger).addFilter(lambda record: not str(record.msg).startswith(prefix))


# bitsandbytes on CPUs with AVX-512 BF16 tries the optional `kernels` package, which fetches its
# kernel from a model hub; offline it falls back to its own CPU kernel, which is what we want.
_drop("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward from kernels-community")
# DeepSpeed (imported by peft/accelerate and month 4) warns that it picked the CPU when no GPU is
# present: on this project's CPU machines that is the intended accelerator, not a failure.
_drop("DeepSpeed", "Setting accelerator to CPU")
