"""Checkpoints: written atomically, loaded without running pickled code.

Every file the project writes holds only tensors and plain data (configs as dicts, RNG states
as tensors), so every load uses `torch.load(weights_only=True)`, the Trainer's own resume file
included: a checkpoint downloaded from elsewhere cannot run code, and one that tries is
refused with a clear error. No path in the project loads with `weights_only=False`.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from shared.errors import UserError


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save to a temporary file in the same folder, fsync, then rename over `path`:
    a reader never sees a half-written file, even after a kill."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """The checkpoint at `path`, tensors and plain data only; anything else is a UserError."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL (\S+) was not an allowed global", str(err))
        if found:
            raise UserError(f"{path}: refused: it holds a Python object ({found.group(1)}) besides tensors and "
                            "plain data, and loading it could run code; use a checkpoint written by this "
                            "project") from None
        raise UserError(f"{path} is not a PyTorch checkpoint (it does not unpickle)") from None
    except (RuntimeError, EOFError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path} is not a readable PyTorch checkpoint ({first})") from None
