"""The chatbot's fast path: our own LLaMA decoder, and speculative decoding with a 4-bit draft.

Decoding one token reads every weight once, so on a CPU it is bound by memory traffic and, with
transformers' modules, by ~35 small operations per layer behind Python calls. `LeanLlama` reads
the weights of a loaded LLaMA-family model (LLaMA, SmolLM2, Qwen2) and decodes with:
- fused projections: q, k, v as one matrix and gate, up as one (4 products per layer, not 7);
- RoPE as one complex multiply on q and k together (their rows reordered, `interleave_rope_rows`);
- a preallocated KV cache (`PreallocatedKVCache`, grown by doubling) written in place, and one
  `scaled_dot_product_attention` per layer;
- a choice of weight format per decoder (`make_linear`): fp32 (`transposed_linear`), fp16 stored
  with fp32 arithmetic (`fp16_linear`: the same numbers as fp32 for SmolLM2's bf16-valued weights),
  or 4-bit with bf16 activations (`int4_bf16_linear`: not fp32's numbers).

`speculative_greedy_tokens` then lets the 4-bit decoder propose a few tokens, one at a time, and
the fp16 decoder check them all in one call: it keeps the tokens it would have chosen itself, so
the output is the fp16 decoder's greedy output, at the cost of fewer full-precision calls.
Greedy answers equal plain fp32 `generate`'s (month2_llm_core/tests/test_lean_llama.py); speed in
benchmarks/month2_decode.py and month2_llm_core/RESULTS.md. Whether the draft pays depends on the CPU: the
chat measures it once per machine (`decode_path`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from month1_transformer.sampling import sample_next_token

Linear = Callable[[Tensor], Tensor]
SUPPORTED = ("llama", "qwen2")  # the same decoder layer; Qwen2 adds biases to q, k, v


def transposed_linear(*weights: Tensor) -> Linear:
    """fp32 `x @ W.T` for the rows of `weights` stacked (a fused projection), W.T stored contiguous."""
    wt = torch.cat([w.detach().float() for w in weights]).T.contiguous()
    return lambda x: x @ wt


def fp16_linear(*weights: Tensor) -> Linear:
    """fp16-stored weights, fp32 activations and arithmetic: FBGEMM converts the weights on the fly.
    Exact for bf16-valued weights (fp16 holds them unless below 6e-5, then off by < 3e-8). Its
    packed layout makes a few rows at once cost little more than one (verification)."""
    if "fbgemm" not in torch.backends.quantized.supported_engines:
        raise RuntimeError("fp16 weights need FBGEMM (x86 CPUs); this build lacks it")
    packed = torch.ops.quantized.linear_prepack_fp16(torch.cat([w.detach().float() for w in weights]), None)
    return lambda x: torch.ops.quantized.linear_dynamic_fp16(x, packed)


def int4_bf16_linear(*weights: Tensor, group: int = 32) -> Linear:
    """4-bit weights (asymmetric, one scale and offset per `group` inputs) with bf16 activations:
    torch's CPU int4 kernel, ~2x faster per token than fp16 here. Not fp32's numbers: the draft model.
    SmolLM2's weights came from a 4-bit GGUF (Q4_1, groups of 32), so groups of 32 fit them closely."""
    w = torch.cat([w.detach().float() for w in weights])
    n, k = w.shape
    if k % group:
        raise ValueError(f"int4 weights need in_features divisible by {group}, got {k}")
    g = w.reshape(n, k // group, group)
    low, high = g.amin(-1, keepdim=True), g.amax(-1, keepdim=True)
    scale = ((high - low) / 15).clamp(min=1e-10)
    q = torch.round((g - low) / scale).clamp(0, 15).to(torch.int32).reshape(n, k)
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)
    # the kernel computes (q - 8) * scale + zero per group: zero = low + 8 * scale
    scales_zeros = torch.stack([scale.squeeze(-1), (low + 8 * scale).squeeze(-1)], -1).transpose(0, 1)
    scales_zeros = scales_zeros.contiguous().to(torch.bfloat16)

    def linear(x: Tensor) -> Tensor:
        flat = x.reshape(-1, k).to(torch.bfloat16)
        out = torch.ops.aten._weight_int4pack_mm_for_cpu(flat, packed, group, scales_zeros)
        return out.reshape(*x.shape[:-1], n).float()

    return linear


def interleave_rope_rows(weight: Tensor, n_heads: int) -> Tensor:
    """Reorder a q or k projection's output rows so that RoPE's pairs sit side by side.

    transformers rotates dimension j of a head with j + head_dim/2 (`rotate_half`); after this
    reordering the pair is (2j, 2j+1), one complex number, and RoPE is one complex multiply.
    Attention only sees q . k, which does not change when q and k are reordered alike."""
    rows = weight.shape[0] // n_heads
    order = torch.arange(rows).view(2, rows // 2).T.reshape(-1)  # 0, h/2, 1, h/2+1, ...
    return weight.view(n_heads, rows, *weight.shape[1:])[:, order].reshape(weight.shape)


class DecoderLayer(NamedTuple):
    """One decoder layer's weights, read once from the model (norm weights in fp32)."""

    attn_norm: Tensor
    qkv_proj: Linear  # q, k (rows reordered for RoPE) and v as one projection
    qkv_bias: Tensor | None  # Qwen2 only
    o_proj: Linear
    mlp_norm: Tensor
    gate_up_proj: Linear  # gate and up as one projection
    down_proj: Linear


class PreallocatedKVCache:
    """Keys and values of every layer for one sequence, preallocated and grown by doubling.
    Positions at or past `length` are free: rewinding is just lowering `length`. (Month 1's
    `KVCache` is another design: it concatenates each step's keys and values.)"""

    def __init__(self, n_layer: int, n_kv: int, head_dim: int, capacity: int = 256) -> None:
        self.k = torch.zeros(n_layer, n_kv, capacity, head_dim)
        self.v = torch.zeros_like(self.k)
        self.length = 0

    def make_room(self, end: int) -> None:
        capacity = self.k.size(2)
        if end > capacity:
            k = self.k.new_zeros(*self.k.shape[:2], max(2 * capacity, end), self.k.size(3))
            v = torch.zeros_like(k)
            k[:, :, : self.length], v[:, :, : self.length] = self.k[:, :, : self.length], self.v[:, :, : self.length]
            self.k, self.v = k, v


class LeanLlama:
    """Decode with a LLaMA-family transformers model's weights (LLaMA, SmolLM2, Qwen2: q/k/v bias allowed).

    `step(ids)` appends tokens to the sequence in `self.cache` and returns the logits of each;
    `reset()` starts a new sequence, `rewind(n)` forgets the last n tokens (rejected draft tokens).
    Two decoders of the same model may share one cache (speculative decoding)."""

    def __init__(self, model, make_linear: Callable[..., Linear] = transposed_linear,
                 head: Linear | None = None) -> None:
        cfg = model.config
        if cfg.model_type not in SUPPORTED or getattr(cfg, "use_sliding_window", False):
            raise ValueError(f"LeanLlama decodes {', '.join(SUPPORTED)} models without sliding windows, "
                             f"not {cfg.model_type}")
        self.n_head = cfg.num_attention_heads
        self.n_kv = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_head
        self.eps = cfg.rms_norm_eps
        self.embed = model.model.embed_tokens.weight.detach().float()
        self.layers: list[DecoderLayer] = []
        for layer in model.model.layers:
            attn, mlp = layer.self_attn, layer.mlp
            if any(p.bias is not None for p in [attn.o_proj, mlp.gate_proj, mlp.up_proj, mlp.down_proj]):
                raise ValueError("LeanLlama supports biases on q, k, v only (LLaMA, Qwen2)")
            q, k = (interleave_rope_rows(attn.q_proj.weight.detach(), self.n_head),
                    interleave_rope_rows(attn.k_proj.weight.detach(), self.n_kv))
            bias = None
            if attn.q_proj.bias is not None:
                bias = torch.cat([interleave_rope_rows(attn.q_proj.bias.detach(), self.n_head),
                                  interleave_rope_rows(attn.k_proj.bias.detach(), self.n_kv),
                                  attn.v_proj.bias.detach()]).float()
            self.layers.append(DecoderLayer(
                attn_norm=layer.input_layernorm.weight.detach().float(),
                qkv_proj=make_linear(q, k, attn.v_proj.weight),
                qkv_bias=bias,
                o_proj=make_linear(attn.o_proj.weight),
                mlp_norm=layer.post_attention_layernorm.weight.detach().float(),
                gate_up_proj=make_linear(mlp.gate_proj.weight, mlp.up_proj.weight),
                down_proj=make_linear(mlp.down_proj.weight),
            ))
        self.norm = model.model.norm.weight.detach().float()
        self.head = head if head is not None else transposed_linear(model.lm_head.weight)
        self.rotary = model.model.rotary_emb
        self.rope = torch.zeros(0, 1, self.head_dim // 2, dtype=torch.complex64)
        self.cache = PreallocatedKVCache(len(self.layers), self.n_kv, self.head_dim)

    def _rope_upto(self, end: int) -> Tensor:
        """RoPE rotations for positions 0..end-1 as complex numbers (end, 1, head_dim/2), from the model's
        own rotary module (its scaling variants come for free); computed for twice the need at a time."""
        if end > self.rope.size(0):
            with torch.no_grad():
                cos, sin = self.rotary(self.embed[:1][None], torch.arange(max(256, 2 * end))[None])
            half = self.head_dim // 2
            self.rope = torch.complex(cos[0, :, :half].float(), sin[0, :, :half].float())[:, None]
        return self.rope

    def reset(self) -> None:
        self.cache.length = 0

    def rewind(self, n: int) -> None:
        self.cache.length -= n

    # -- one call: t new tokens ---------------------------------------------------------------------
    @torch.inference_mode()
    def step(self, ids: Sequence[int] | Tensor, last_only: bool = False) -> Tensor:
        """Append tokens to the sequence; (t, vocab) logits, one row per new token (only the last with
        `last_only`: a prompt needs no scores for the tokens it already has)."""
        ids = torch.as_tensor(ids).reshape(-1)
        cache = self.cache
        t, start = ids.numel(), cache.length
        end = start + t
        cache.make_room(end)
        hd, nq, nkv = self.head_dim, self.n_head, self.n_kv
        rope = self._rope_upto(end)[start:end]
        mask = None
        if t > 1:  # new token i sees the cache and new tokens 0..i
            mask = torch.ones(t, end, dtype=torch.bool).tril(diagonal=start)
        x = self.embed[ids]  # (t, d)
        for i, layer in enumerate(self.layers):
            qkv = layer.qkv_proj(F.rms_norm(x, (x.size(-1),), layer.attn_norm, self.eps))
            if layer.qkv_bias is not None:
                qkv = qkv + layer.qkv_bias
            qk = torch.view_as_complex(qkv[:, : (nq + nkv) * hd].reshape(t, nq + nkv, hd // 2, 2)) * rope
            qk = torch.view_as_real(qk).reshape(t, nq + nkv, hd)
            cache.k[i, :, start:end] = qk[:, nq:].transpose(0, 1)
            cache.v[i, :, start:end] = qkv[:, (nq + nkv) * hd :].view(t, nkv, hd).transpose(0, 1)
            keys, values = cache.k[i, :, :end], cache.v[i, :, :end]
            if t == 1:  # one query per head: group the heads that share a key/value head as its queries
                att = F.scaled_dot_product_attention(qk[0, :nq].view(1, nkv, nq // nkv, hd), keys[None], values[None])
            else:
                att = F.scaled_dot_product_attention(qk[:, :nq].transpose(0, 1), keys, values, attn_mask=mask,
                                                     enable_gqa=True).transpose(0, 1)
            x = x + layer.o_proj(att.reshape(t, nq * hd))
            gate, up = layer.gate_up_proj(F.rms_norm(x, (x.size(-1),), layer.mlp_norm, self.eps)).chunk(2, dim=-1)
            x = x + layer.down_proj(F.silu(gate) * up)
        cache.length = end
        if last_only:
            x = x[-1:]
        return self.head(F.rms_norm(x, (x.size(-1),), self.norm, self.eps))


def lean_tokens(lean: LeanLlama, prompt_ids: Sequence[int], max_new_tokens: int,
                eos_token_ids: Sequence[int] | set[int] = (), temperature: float = 0.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None) -> Iterator[int]:
    """Decode with one lean decoder, greedy (temperature 0) or sampled (month 1's `sample_next_token`);
    yields token ids, stops after an eos id or max_new_tokens."""
    lean.reset()
    logits = lean.step(prompt_ids, last_only=True)
    for _ in range(max_new_tokens):
        token = int(sample_next_token(logits, temperature, top_k, top_p, generator))
        yield token
        if token in eos_token_ids:
            return
        logits = lean.step([token])


def speculative_greedy_tokens(target: LeanLlama, draft: LeanLlama, prompt_ids: Sequence[int], max_new_tokens: int,
                              eos_token_ids: Sequence[int] | set[int] = (), lookahead: int = 6,
                              min_margin: float = 1.0, stats: dict | None = None) -> Iterator[int]:
    """Greedy decoding of `target`, sped up by a cheaper `draft` of the same model (speculative decoding).

    The draft proposes `lookahead` tokens one by one; the target scores them all in one call and
    keeps the longest prefix equal to its own greedy choices, plus its own next token. Every token
    yielded is therefore the target's greedy token: the draft only decides how many come per
    target call. The draft works in the target's KV cache: it needs no prefill of its own, and
    the target's exact keys and values overwrite the draft's wherever it verifies.
    `stats` (optional) receives the token and target-call counts."""
    if max_new_tokens <= 0:
        return
    draft.cache = target.cache
    target.reset()
    token = int(target.step(prompt_ids, last_only=True)[-1].argmax())
    made = calls = 0
    try:
        while True:
            yield token  # always the target's own greedy choice
            made += 1
            if token in eos_token_ids or made >= max_new_tokens:
                return
            verified = target.cache.length
            proposal, last = [], token
            for _ in range(min(lookahead, max_new_tokens - made)):
                top = draft.step([last])[-1].topk(2)
                last = int(top.indices[0])
                proposal.append(last)
                if top.values[0] - top.values[1] < min_margin:
                    break  # the draft hesitates: tokens after this one would likely be wasted
            target.cache.length = verified  # the target recomputes what the draft wrote
            choices = target.step([token, *proposal]).argmax(-1).tolist()
            calls += 1
            kept = 0
            while kept < len(proposal) and choices[kept] == proposal[kept]:
                kept += 1
            target.rewind(len(proposal) - kept)  # forget the rejected tail
            for accepted in proposal[:kept]:
                yield accepted
                made += 1
                if accepted in eos_token_ids or made >= max_new_tokens:
                    return
            token = choices[kept]
    finally:
        if stats is not None:
            stats.update(tokens=made, target_calls=calls)


class FastDecoder:
    """What `chat` decodes with: an fp16 LeanLlama, and (with `speculative`) a 4-bit draft for greedy decoding.

    A machine without FBGEMM gets fp32 weights; one where the int4 kernel is missing or refuses
    the shapes gets no draft (plain lean decoding): slower, same tokens. `describe()` says which
    of these actually runs."""

    def __init__(self, model, speculative: bool = True, lookahead: int = 6, min_margin: float = 1.0) -> None:
        try:
            self.target = LeanLlama(model, fp16_linear, head=fp16_linear(model.lm_head.weight))
            self.weights = "fp16"
        except RuntimeError as err:  # no FBGEMM (not x86): fp32 weights, the same tokens
            warnings.warn(f"fp16 weights off: {err}", stacklevel=2)
            self.target = LeanLlama(model)
            self.weights = "fp32"
        self.draft: LeanLlama | None = None
        if speculative:
            try:
                self.draft = LeanLlama(model, int4_bf16_linear, head=int4_bf16_linear(model.lm_head.weight))
            except (RuntimeError, ValueError) as err:  # no int4 kernel in this torch build, or odd shapes
                warnings.warn(f"speculative decoding off (no 4-bit draft): {err}", stacklevel=2)
        self.lookahead, self.min_margin = lookahead, min_margin
        self.stats: dict = {}

    def describe(self, temperature: float = 0.0) -> str:
        """The path `tokens` takes at this temperature, e.g. "speculative fp16 + int4 draft"."""
        if temperature == 0 and self.draft is not None:
            return f"speculative {self.weights} + int4 draft"
        return f"{self.weights} decoder"

    def tokens(self, prompt_ids: Sequence[int], max_new_tokens: int, eos_token_ids: Sequence[int] | set[int] = (),
               temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None,
               generator: torch.Generator | None = None) -> Iterator[int]:
        """New token ids for a prompt: speculative when greedy with a draft, the target decoder alone otherwise."""
        if temperature == 0 and self.draft is not None:
            return speculative_greedy_tokens(self.target, self.draft, prompt_ids, max_new_tokens, eos_token_ids,
                                             self.lookahead, self.min_margin, self.stats)
        return lean_tokens(self.target, prompt_ids, max_new_tokens, eos_token_ids, temperature, top_k, top_p,
                           generator)
