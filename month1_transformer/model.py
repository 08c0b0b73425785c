"""A GPT-style decoder, from scratch, in one readable file (after nanoGPT's model.py).

token embedding (+ position) -> n_layer x [pre-norm attention + residual, pre-norm MLP + residual]
-> final norm -> linear head to vocabulary logits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from month1_transformer.attention import KVCache, MultiHeadAttention
from month1_transformer.norm import LayerNorm, RMSNorm
from month1_transformer.positional import LearnedPositionalEmbedding, rope_cache, sinusoidal_encoding
from month1_transformer.sampling import sample_next_token

POS_ENCODINGS = ("learned", "sinusoidal", "rope", "none")
NORMS = ("layernorm", "rmsnorm")


@dataclass
class GPTConfig:
    vocab_size: int = field(default=65, metadata={"help": "set from the tokenizer", "derived": True})
    block_size: int = field(default=64, metadata={"help": "context length in tokens"})
    n_layer: int = field(default=4, metadata={"help": "transformer blocks"})
    n_head: int = field(default=4, metadata={"help": "attention heads per block"})
    n_embd: int = field(default=128, metadata={"help": "model width"})
    dropout: float = field(default=0.0, metadata={"help": "dropout probability"})
    bias: bool = field(default=True, metadata={"help": "biases in linear layers and norms"})
    pos_enc: str = field(default="learned", metadata={"help": "position encoding", "choices": POS_ENCODINGS})
    norm: str = field(default="layernorm", metadata={"help": "normalisation", "choices": NORMS})
    tie_weights: bool = field(default=True, metadata={"help": "share token embedding and output head"})
    fused_attention: bool = field(default=True, metadata={"help": "use torch's fused SDPA kernel"})
    fused_norm: bool = field(default=True, metadata={
        "help": "torch's fused LayerNorm/RMSNorm kernels (the maths of norm.py in one op instead of five)"})

    def __post_init__(self) -> None:
        if self.pos_enc not in POS_ENCODINGS:
            raise ValueError(f"pos_enc must be one of {POS_ENCODINGS}, got {self.pos_enc!r}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")


def make_norm(cfg: GPTConfig) -> nn.Module:
    """Our from-scratch norm, or torch's fused one (same parameters and maths; tested equal)."""
    if cfg.norm == "layernorm":
        return nn.LayerNorm(cfg.n_embd, bias=cfg.bias) if cfg.fused_norm else LayerNorm(cfg.n_embd, bias=cfg.bias)
    return nn.RMSNorm(cfg.n_embd, eps=RMSNorm.EPS) if cfg.fused_norm else RMSNorm(cfg.n_embd)


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x)).

    Normalising the branch input (not the sum) keeps an identity path from the input to
    the output of the whole stack, which is what lets deep Transformers train stably."""

    def __init__(self, cfg: GPTConfig, mlp: nn.Module | None = None) -> None:
        super().__init__()
        self.ln_1 = make_norm(cfg)
        self.attn = MultiHeadAttention(cfg.n_embd, cfg.n_head, cfg.bias, cfg.dropout, cfg.fused_attention)
        self.ln_2 = make_norm(cfg)
        self.mlp = MLP(cfg) if mlp is None else mlp  # another feed-forward: month 4's mixture of experts
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(
        self,
        x: Tensor,
        rope: tuple[Tensor, Tensor] | None = None,
        cache: KVCache | None = None,
        layer: int = 0,
    ) -> Tensor:
        x = x + self.resid_dropout(self.attn(self.ln_1(x), is_causal=True, rope=rope, cache=cache, layer=layer))
        return x + self.mlp(self.ln_2(x))


# Builds block `layer`'s feed-forward in place of the MLP (month 4 puts a mixture of experts there).
MLPFactory = Callable[[GPTConfig, int], nn.Module]


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig, mlp_factory: MLPFactory | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        if cfg.pos_enc == "learned":
            self.pos_emb = LearnedPositionalEmbedding(cfg.block_size, cfg.n_embd)
        elif cfg.pos_enc == "sinusoidal":
            self.register_buffer("pos_table", sinusoidal_encoding(cfg.block_size, cfg.n_embd), persistent=False)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, mlp_factory(cfg, i) if mlp_factory else None)
                                    for i in range(cfg.n_layer))
        self.ln_f = make_norm(cfg)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_weights:
            self.lm_head.weight = self.tok_emb.weight
        self.apply(self._init_weights)
        # GPT-2: scale the projections that write into the residual stream by 1/sqrt(2 * n_layer).
        for name, p in self.named_parameters():
            if name.endswith(("attn.out_proj.weight", "mlp.proj.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self, idx: Tensor, targets: Tensor | None = None, cache: KVCache | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """idx (B, T) token ids -> logits (B, T, V), and the mean cross-entropy if targets given.
        With a cache, idx holds only the new tokens; their positions continue the cache's."""
        cfg = self.cfg
        _, t = idx.shape
        offset = cache.length if cache is not None else 0
        if offset + t > cfg.block_size:
            raise ValueError(f"sequence of {offset + t} tokens exceeds block_size {cfg.block_size}")
        positions = torch.arange(offset, offset + t, device=idx.device)
        x = self.tok_emb(idx)
        if cfg.pos_enc == "learned":
            x = x + self.pos_emb(positions)
        elif cfg.pos_enc == "sinusoidal":
            x = x + self.pos_table[positions]
        rope = rope_cache(positions, cfg.n_embd // cfg.n_head) if cfg.pos_enc == "rope" else None
        x = self.drop(x)
        for layer, block in enumerate(self.blocks):
            x = block(x, rope=rope, cache=cache, layer=layer)
        x = self.ln_f(x)
        # Under bf16 autocast the head and the loss stay fp32: a bf16 head (tied to the embedding)
        # slowed learning measurably (month1_transformer/tests/test_train_cli.py), and it is cheap.
        with torch.autocast(x.device.type, enabled=False):
            logits = self.lm_head(x.float())
            loss = None
            if targets is not None:
                loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    @torch.no_grad()
    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Append max_new_tokens sampled tokens to idx (B, T). The context is the last
        block_size tokens; with the KV cache each step feeds one token, and when the window
        is full the cache is refilled from the last block_size tokens, so cached and
        uncached generation see exactly the same context."""
        was_training = self.training
        self.eval()
        block = self.cfg.block_size
        cache = KVCache(self.cfg.n_layer) if use_cache else None
        for _ in range(max_new_tokens):
            if cache is None:
                logits, _ = self(idx[:, -block:])
            elif cache.length == 0 or cache.length >= block:
                cache.reset()
                logits, _ = self(idx[:, -block:], cache=cache)
            else:
                logits, _ = self(idx[:, -1:], cache=cache)
            next_id = sample_next_token(logits[:, -1, :], temperature, top_k, top_p, generator)
            idx = torch.cat([idx, next_id], dim=1)
        self.train(was_training)
        return idx

    def config_dict(self) -> dict:
        return asdict(self.cfg)
