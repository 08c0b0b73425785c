"""LoRA from scratch: a frozen linear layer plus a trainable low-rank update (graded exercise 2.1).

    y = W x + b + (alpha / r) * B A dropout(x),   A: (r, in), B: (out, r)

A starts random (Kaiming-uniform, as peft does) and B at zero, so training starts exactly from
the pretrained layer. Only r * (in + out) numbers train instead of in * out. After training,
`merge()` folds B A into W: a plain nn.Linear again, with no extra cost at inference.
tests/test_lora.py checks it against peft's LoraLayer on the same weights.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0, dropout: float = 0.0) -> None:
        super().__init__()
        if r <= 0:
            raise ValueError(f"rank r must be positive, got {r}")
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.r = r
        self.scaling = alpha / r
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))  # peft's default initialisation
        nn.init.zeros_(self.lora_B.weight)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.base(x) + self.lora_B(self.lora_A(self.dropout(x))) * self.scaling

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        """A plain nn.Linear computing the same function (W + scaling * B A)."""
        merged = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        merged.weight.copy_(self.base.weight + self.scaling * self.lora_B.weight @ self.lora_A.weight)
        if self.base.bias is not None:
            merged.bias.copy_(self.base.bias)
        return merged.to(self.base.weight.dtype)
