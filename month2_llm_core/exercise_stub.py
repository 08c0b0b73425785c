"""Month 2 graded exercises: your implementation.

Fill in every `raise NotImplementedError(...)`, then grade your work:

    python -m shared.exercises start month2                                   # copies this file to my_work/
    pytest month2_llm_core --impl my_work/month2_llm_core.py                  # all tasks
    pytest month2_llm_core --impl my_work/month2_llm_core.py -m m2_t2         # one task

Tests compare your code with the libraries it re-implements: peft's LoRA layer,
bitsandbytes' NF4, transformers' generate() and chat template, and transformers' top-p
filter, with explicit tolerances. Tasks 2.3 and 2.5 use the real SmolLM2 model/tokenizer from
the offline store (a few seconds to load). You may use torch tensor operations, but not the
library you are re-implementing (no peft in 2.1, no bitsandbytes in 2.2, no generate() in 2.3,
no apply_chat_template in 2.5).

LoRALinear is the one class, and its constructor is part of the task (which layers, frozen
how, initialised how), so it is an nn.Module of your own rather than a subclass of the
reference. The constants the tasks use (NF4_LEVELS, SMOLLM2_DEFAULT_SYSTEM) are imported
from the reference, so they cannot drift from it.
"""

from __future__ import annotations

import torch  # noqa: F401  (you will want it)
from torch import Tensor, nn

from month2_llm_core.nf4 import NF4_LEVELS  # noqa: F401  (Task 2.2 uses it)
from month2_llm_core.tokenization import SMOLLM2_DEFAULT_SYSTEM  # noqa: F401  (Task 2.5 uses it)

MONTH = "month2_llm_core"


# Task 2.1 (15 points) ------------------------------------------------------------------------
class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update:

        y = base(x) + lora_B(lora_A(dropout(x))) * (alpha / r)

    Attributes the tests use: `base` (the given layer, its parameters frozen), `lora_A`
    (nn.Linear in_features -> r, no bias, Kaiming-uniform with a=sqrt(5)), `lora_B`
    (nn.Linear r -> out_features, no bias, zeros), `scaling` (alpha / r), and `dropout`
    (nn.Dropout when dropout > 0, else nn.Identity).

    Hint: with B at zero the layer starts out exactly equal to `base`.
    """

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0, dropout: float = 0.0) -> None:
        super().__init__()
        raise NotImplementedError("Task 2.1: LoRALinear.__init__")

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., in_features) -> (..., out_features)."""
        raise NotImplementedError("Task 2.1: LoRALinear.forward")

    def merge(self) -> nn.Linear:
        """A new plain nn.Linear computing the same function: weight W + scaling * B @ A, same bias."""
        raise NotImplementedError("Task 2.1: LoRALinear.merge")


# Task 2.2 (15 points) ------------------------------------------------------------------------
# NF4_LEVELS (imported above): the 16 NF4 levels of the QLoRA paper (appendix E), quantiles of a
# normal distribution scaled to [-1, 1], ascending; a float32 tensor of shape (16,).


def nf4_quantize(x: Tensor, blocksize: int = 64) -> tuple[Tensor, Tensor]:
    """Blockwise NF4 quantization of x (any shape, flattened in row-major order).

    Returns (codes, absmax): codes is uint8 with x.numel() entries in 0..15 (one per value, not
    packed), absmax is fp32 with one entry per block (the last block may be shorter).

    Hint: pad the flat tensor to a whole number of blocks, view it as (n_blocks, blocksize),
    divide by each block's absmax (guard against 0), clamp to [-1, 1], then pick the nearest
    level. On an exact midpoint between two levels, pick the lower one (argmin does).
    """
    raise NotImplementedError("Task 2.2: nf4_quantize")


def nf4_dequantize(codes: Tensor, absmax: Tensor, shape: tuple[int, ...], blocksize: int = 64) -> Tensor:
    """fp32 tensor of `shape`: NF4_LEVELS[codes] times the absmax of each value's block."""
    raise NotImplementedError("Task 2.2: nf4_dequantize")


# Task 2.3 (15 points) ------------------------------------------------------------------------
def greedy_decode(model, input_ids: Tensor, max_new_tokens: int, eos_token_id: int | None = None) -> Tensor:
    """Greedy decoding with a KV cache for a Hugging Face causal LM; batch of one.

    Returns (1, T + n): the prompt followed by the new tokens, exactly what
    model.generate(input_ids, max_new_tokens=..., do_sample=False) returns. Stop after
    emitting eos_token_id (it is kept) or after max_new_tokens.

    Hint: `from transformers import DynamicCache`; cache = DynamicCache(config=model.config);
    logits = model(input_ids=..., cache=cache, use_cache=True).logits fills the cache. After
    the prompt, feed only the newest token, shape (1, 1): the cache holds the rest. The tests
    count the tokens each forward call receives. Use torch.inference_mode().
    """
    raise NotImplementedError("Task 2.3: greedy_decode")


# Task 2.4 (5 points) -------------------------------------------------------------------------
def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Nucleus filtering: keep the smallest set of most likely tokens whose probabilities sum to
    >= p; set every other logit to -inf. logits: (..., V). The top token always stays.

    Hint: sort descending, softmax, cumsum; a token is dropped when the probability mass of the
    tokens *before* it is already >= p. Scatter the mask back to the original order.
    """
    raise NotImplementedError("Task 2.4: top_p_filter")


# Task 2.5 (10 points) ------------------------------------------------------------------------
# SMOLLM2_DEFAULT_SYSTEM (imported above): what SmolLM2's template inserts when a conversation
# does not start with a system message.


def apply_chatml(messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    """SmolLM2's chat template, by hand: the string tokenizer.apply_chat_template(messages,
    tokenize=False, add_generation_prompt=...) returns.

    Each message {"role": r, "content": c} becomes "<|im_start|>r\\nc<|im_end|>\\n". A
    conversation whose first message is not a system message starts with the default one
    (SMOLLM2_DEFAULT_SYSTEM). The generation prompt is "<|im_start|>assistant\\n".
    """
    raise NotImplementedError("Task 2.5: apply_chatml")
