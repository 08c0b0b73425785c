"""From a text corpus to training batches: tokenize, split 90/10, sample random windows."""

from __future__ import annotations

import torch
from torch import Tensor

from shared.training import GetBatch


def split_ids(ids: list[int] | Tensor, val_fraction: float = 0.1) -> tuple[Tensor, Tensor]:
    """First (1 - val_fraction) of the tokens for training, the rest for validation."""
    data = torch.as_tensor(ids, dtype=torch.long)
    n_train = int(len(data) * (1 - val_fraction))
    return data[:n_train], data[n_train:]


def make_get_batch(
    train: Tensor, val: Tensor, block_size: int, batch_size: int, device: torch.device | str = "cpu"
) -> GetBatch:
    """Random windows: x = tokens[i : i+block], y = tokens[i+1 : i+block+1] (next-token targets)."""
    splits = {"train": train, "val": val}
    for name, data in splits.items():
        if len(data) <= block_size:
            raise ValueError(f"{name} split has {len(data)} tokens, needs more than block_size={block_size}")

    def get_batch(split: str, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        data = splits[split]
        starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
        x = torch.stack([data[i : i + block_size] for i in starts.tolist()])
        y = torch.stack([data[i + 1 : i + 1 + block_size] for i in starts.tolist()])
        return x.to(device), y.to(device)

    return get_batch
