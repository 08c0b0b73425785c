"""RWKV (Peng et al. 2023, RWKV-4): attention-like mixing computed as an RNN, on the same
streaming interface as Mamba.

The time-mixing "WKV" operator, per channel, with a learned decay w > 0 and bonus u:

    wkv_t = (sum_{i<t} e^{-(t-1-i) w + k_i} v_i  +  e^{u + k_t} v_t)
          / (sum_{i<t} e^{-(t-1-i) w + k_i}       +  e^{u + k_t})

- `wkv_recurrent`: the RNN. The state is (num, den) scaled by e^{-p} with p the running max
  exponent, so e^{k} never overflows (RWKV's own trick).
- `wkv_parallel`: the same numbers for a whole chunk at once. Read the formula as attention:
  for each channel, a softmax over positions i <= t of the scores -(t-1-i) w + k_i (and u + k_t
  at i = t), weighting v_i. The state carried in from earlier chunks is one more "position"
  with score p - t w. Unlike Mamba the decay w does not depend on the input (time-invariant),
  which is why this quadratic-in-chunk form exists; chunks keep it linear in length.

A block is x + TimeMix(LN(x)) then x + ChannelMix(LN(x)); both mix each token with the previous
one ("token shift"), so the state also keeps the last token's normalised input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from month1_transformer.norm import LayerNorm
from month3_mamba.checks import require_at_least
from month3_mamba.model import StreamingLM

WKVState = tuple[Tensor, Tensor, Tensor]  # (num, den, p), each (b, d): num * e^p = sum of e^{...} v


def wkv_init_state(b: int, d: int, device=None) -> WKVState:
    zeros = torch.zeros(b, d, device=device)
    return zeros, zeros.clone(), torch.full((b, d), -1e38, device=device)  # p = -inf: nothing seen


def wkv_recurrent(w: Tensor, u: Tensor, k: Tensor, v: Tensor, state: WKVState | None = None) -> tuple[Tensor, WKVState]:
    """The WKV operator one token at a time. w, u: (d,); k, v: (b, t, d). Returns (wkv (b, t, d), state)."""
    num, den, p = state if state is not None else wkv_init_state(k.size(0), k.size(2), k.device)
    outs = []
    for k_t, v_t in zip(k.unbind(1), v.unbind(1)):
        bonus = u + k_t  # the current token enters with the bonus u, not yet decayed
        q = torch.maximum(p, bonus)
        e_old, e_new = torch.exp(p - q), torch.exp(bonus - q)
        outs.append((e_old * num + e_new * v_t) / (e_old * den + e_new))
        decayed = p - w  # then the state moves one step on: old terms decay by e^{-w}, k_t joins
        q = torch.maximum(decayed, k_t)
        e_old, e_new = torch.exp(decayed - q), torch.exp(k_t - q)
        num, den, p = e_old * num + e_new * v_t, e_old * den + e_new, q
    return torch.stack(outs, 1), (num, den, p)


def wkv_parallel(
    w: Tensor, u: Tensor, k: Tensor, v: Tensor, state: WKVState | None = None, chunk_size: int = 32
) -> tuple[Tensor, WKVState]:
    """Same contract and numbers as wkv_recurrent: a masked softmax per chunk, state between chunks."""
    state = state if state is not None else wkv_init_state(k.size(0), k.size(2), k.device)
    outs = []
    for start in range(0, k.size(1), chunk_size):
        out, state = _wkv_chunk(w, u, k[:, start : start + chunk_size], v[:, start : start + chunk_size], state)
        outs.append(out)
    return torch.cat(outs, 1), state


def _wkv_chunk(w: Tensor, u: Tensor, k: Tensor, v: Tensor, state: WKVState) -> tuple[Tensor, WKVState]:
    num, den, p = state
    t = k.size(1)
    pos = torch.arange(t, device=k.device, dtype=k.dtype)
    lag = (pos[:, None] - 1 - pos[None, :])  # (t, i): t - 1 - i
    # scores[b, t, i, d]: -(t-1-i) w + k_i for i < t, u + k_t at i = t, -inf after t
    scores = -lag[None, :, :, None] * w + k[:, None, :, :]
    diagonal = torch.eye(t, dtype=torch.bool, device=k.device)[None, :, :, None]
    scores = torch.where(diagonal, (u + k)[:, :, None, :], scores)
    scores = scores.masked_fill((lag < -1)[None, :, :, None], float("-inf"))
    past = p[:, None, :] - pos[None, :, None] * w  # (b, t, d): the carried state decayed t steps
    top = torch.maximum(scores.amax(2), past)
    weights = torch.exp(scores - top[:, :, None, :])
    e_past = torch.exp(past - top)
    out = (torch.einsum("btid,bid->btd", weights, v) + e_past * num[:, None]) / (weights.sum(2) + e_past * den[:, None])
    # The state after the chunk: old state decayed t steps plus every token of the chunk.
    end = k - (t - 1 - pos)[None, :, None] * w  # (b, i, d)
    old = p - t * w
    q = torch.maximum(end.amax(1), old)
    e_end, e_old = torch.exp(end - q[:, None]), torch.exp(old - q)
    new_state = (e_old * num + (e_end * v).sum(1), e_old * den + e_end.sum(1), q)
    return out, new_state


@dataclass
class RWKVConfig:
    vocab_size: int = field(default=256, metadata={"help": "vocabulary size (256: bytes)"})
    d_model: int = field(default=64, metadata={"help": "model width"})
    n_layer: int = field(default=2, metadata={"help": "RWKV blocks"})
    ffn_mult: int = field(default=4, metadata={"help": "channel-mix hidden width = this x d_model"})
    norm_eps: float = field(default=1e-5, metadata={"help": "norm epsilon"})
    tie_embeddings: bool = field(default=True, metadata={"help": "share the embedding and the LM head"})
    chunk_size: int = field(default=32, metadata={"help": "chunk length of the parallel WKV"})

    def __post_init__(self) -> None:
        require_at_least(self, 1, "vocab_size", "d_model", "n_layer", "ffn_mult", "chunk_size")


@dataclass
class RWKVLayerState:
    att_shift: Tensor  # (b, d): the previous token's input to time mixing
    ffn_shift: Tensor  # (b, d): ... and to channel mixing
    num: Tensor  # (b, d) WKV state, see WKVState
    den: Tensor
    p: Tensor


def token_shift(x: Tensor, prev: Tensor | None) -> Tensor:
    """(b, t, d) -> the previous token's vector at every position (prev, or zeros, before the first)."""
    first = torch.zeros_like(x[:, :1]) if prev is None else prev[:, None]
    return torch.cat([first, x[:, :-1]], 1)


class TimeMix(nn.Module):
    def __init__(self, cfg: RWKVConfig, layer: int) -> None:
        super().__init__()
        d = cfg.d_model
        self.chunk_size = cfg.chunk_size
        ratio = layer / max(1, cfg.n_layer - 1)
        frac = torch.arange(d) / d
        # RWKV-4 init: decays spread from fast to slow across channels; mixes lean on the current token.
        self.time_decay = nn.Parameter(-5 + 8 * (torch.arange(d) / max(1, d - 1)) ** (0.7 + 1.3 * ratio))
        self.time_first = nn.Parameter(torch.full((d,), math.log(0.3)) + 0.5 * ((torch.arange(d) + 1) % 3 - 1))
        self.time_mix_k = nn.Parameter(frac ** (1 - ratio / 2))
        self.time_mix_v = nn.Parameter(frac ** (1 - ratio / 2) + 0.3 * ratio)
        self.time_mix_r = nn.Parameter(frac ** (0.5 * (1 - ratio / 2)))
        self.key = nn.Linear(d, d, bias=False)
        self.value = nn.Linear(d, d, bias=False)
        self.receptance = nn.Linear(d, d, bias=False)
        self.output = nn.Linear(d, d, bias=False)

    def forward(self, x: Tensor, state: RWKVLayerState | None = None, recurrent: bool = False) -> Tensor:
        xx = token_shift(x, None if state is None else state.att_shift)
        k = self.key(x * self.time_mix_k + xx * (1 - self.time_mix_k))
        v = self.value(x * self.time_mix_v + xx * (1 - self.time_mix_v))
        r = self.receptance(x * self.time_mix_r + xx * (1 - self.time_mix_r))
        wkv_in = None if state is None else (state.num, state.den, state.p)
        w = torch.exp(self.time_decay)
        if recurrent:
            wkv, (num, den, p) = wkv_recurrent(w, self.time_first, k, v, wkv_in)
        else:
            wkv, (num, den, p) = wkv_parallel(w, self.time_first, k, v, wkv_in, self.chunk_size)
        if state is not None:
            state.att_shift, state.num, state.den, state.p = x[:, -1], num, den, p
        return self.output(torch.sigmoid(r) * wkv)


class ChannelMix(nn.Module):
    def __init__(self, cfg: RWKVConfig, layer: int) -> None:
        super().__init__()
        d = cfg.d_model
        frac = (torch.arange(d) / d) ** (1 - layer / max(1, cfg.n_layer))
        self.time_mix_k = nn.Parameter(frac.clone())
        self.time_mix_r = nn.Parameter(frac.clone())
        self.key = nn.Linear(d, cfg.ffn_mult * d, bias=False)
        self.value = nn.Linear(cfg.ffn_mult * d, d, bias=False)
        self.receptance = nn.Linear(d, d, bias=False)

    def forward(self, x: Tensor, state: RWKVLayerState | None = None) -> Tensor:
        xx = token_shift(x, None if state is None else state.ffn_shift)
        k = torch.relu(self.key(x * self.time_mix_k + xx * (1 - self.time_mix_k))).square()
        r = torch.sigmoid(self.receptance(x * self.time_mix_r + xx * (1 - self.time_mix_r)))
        if state is not None:
            state.ffn_shift = x[:, -1]
        return r * self.value(k)


class RWKVBlock(nn.Module):
    def __init__(self, cfg: RWKVConfig, layer: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.ln1 = LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.att = TimeMix(cfg, layer)
        self.ln2 = LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.ffn = ChannelMix(cfg, layer)

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> RWKVLayerState:
        d = self.cfg.d_model
        num, den, p = wkv_init_state(batch_size, d, device)
        zeros = torch.zeros(batch_size, d, device=device)
        return RWKVLayerState(zeros, zeros.clone(), num, den, p)

    def forward(self, x: Tensor, state: RWKVLayerState | None = None, recurrent: bool = False) -> Tensor:
        x = x + self.att(self.ln1(x), state, recurrent)
        return x + self.ffn(self.ln2(x), state)

    def step(self, x: Tensor, state: RWKVLayerState) -> Tensor:
        return self.forward(x[:, None], state, recurrent=True)[:, 0]


class RWKVLM(StreamingLM):
    """A byte-level RWKV-4 language model with Mamba's streaming interface (model.StreamingLM)."""

    def __init__(self, cfg: RWKVConfig) -> None:
        super().__init__(cfg, [RWKVBlock(cfg, i) for i in range(cfg.n_layer)])
