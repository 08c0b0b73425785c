"""What the router did: load per expert, dropped tokens, balance, collapse; and what it learned:
the domain x expert routing matrix and the mutual information I(domain; expert)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor


@dataclass
class LoadStats:
    tokens: int  # real (unmasked) tokens in the batch
    routes_per_expert: list[int]  # what the router asked for, before capacity
    kept_per_expert: list[int]  # what the experts processed
    dropped_share: float  # dropped routes / routes
    load_cv: float  # coefficient of variation (std / mean) of routes_per_expert; 0 = perfectly balanced
    max_over_mean: float  # the busiest expert's load / the mean load; 1 = balanced
    max_share: float  # the largest share of the tokens that chose one expert
    collapsed: bool  # one expert took over (max_share >= the collapse threshold)

    def as_dict(self) -> dict:
        return asdict(self)


def load_stats(load: Tensor, kept: Tensor, n_tokens: int, top_k: int, collapse_share: float = 0.9) -> LoadStats:
    """Load metrics of one forward. `load` and `kept`: routes per expert before / after capacity."""
    load_f = load.double()
    routes = float(load_f.sum())
    mean = load_f.mean()
    cv = float(load_f.std(unbiased=False) / mean) if routes else 0.0
    max_share = float(load_f.max()) / n_tokens if n_tokens else 0.0
    return LoadStats(
        tokens=n_tokens,
        routes_per_expert=[int(v) for v in load.tolist()],
        kept_per_expert=[int(v) for v in kept.tolist()],
        dropped_share=1.0 - float(kept.sum()) / routes if routes else 0.0,
        load_cv=cv,
        max_over_mean=float(load_f.max() / mean) if routes else 0.0,
        max_share=max_share,
        # With k >= E every expert sees every token: no expert can "take over".
        collapsed=len(load) > top_k and max_share >= collapse_share,
    )


def warn_if_collapsed(stats: Sequence[LoadStats], step: int | None = None) -> bool:
    """A RuntimeWarning naming the layers where one expert took over; True if any did."""
    bad = [(i, s) for i, s in enumerate(stats) if s is not None and s.collapsed]
    if bad:
        busiest = lambda s: max(range(len(s.routes_per_expert)), key=s.routes_per_expert.__getitem__)  # noqa: E731
        where = ", ".join(f"layer {i}: expert {busiest(s)} took {s.max_share:.0%} of the tokens" for i, s in bad)
        at = f" at step {step}" if step is not None else ""
        warnings.warn(f"expert collapse{at} ({where}); raise aux_loss_coef, use aux_free balancing or "
                      "noisy gating", RuntimeWarning, stacklevel=2)
    return bool(bad)


def mutual_information(joint: Tensor) -> float:
    """I(domain; expert) in bits from a [domains, experts] count (or probability) matrix.
    0 when routing ignores the domain; log2(domains) (2 bits for 4 domains with equal token counts)
    when each domain has experts of its own."""
    p = joint.double() / joint.sum()
    outer = p.sum(1, keepdim=True) * p.sum(0, keepdim=True)
    nz = p > 0
    return float((p[nz] * torch.log2(p[nz] / outer[nz])).sum())


def plot_routing(matrices: Sequence[Tensor], domains: Sequence[str], path: str | Path, title: str = "") -> Path:
    """One heatmap per layer: the share of each domain's tokens whose first choice is each expert."""
    from matplotlib.figure import Figure  # here: matplotlib costs a second per process (DeepSpeed's ranks)

    from shared.plotting import save

    n = len(matrices)
    fig = Figure(figsize=(3.2 * n + 0.8, 3.4))
    axes = fig.subplots(1, n, squeeze=False)[0]
    for layer, (ax, counts) in enumerate(zip(axes, matrices)):
        share = counts.double() / counts.sum(1, keepdim=True).clamp_min(1)
        image = ax.imshow(share.numpy(), vmin=0, vmax=1, cmap="viridis")
        for (d, e), value in _cells(share):
            ax.text(e, d, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="black" if value > 0.6 else "white")
        ax.set_xticks(range(share.size(1)), [f"E{e}" for e in range(share.size(1))])
        ax.set_yticks(range(len(domains)), list(domains) if layer == 0 else [""] * len(domains))
        ax.set_title(f"layer {layer}: I = {mutual_information(counts):.2f} bits", fontsize=9)
    fig.colorbar(image, ax=axes[-1], shrink=0.8, label="share of the domain's tokens")
    if title:
        fig.suptitle(title)
    return save(fig, path)


def _cells(matrix: Tensor):
    for d in range(matrix.size(0)):
        for e in range(matrix.size(1)):
            yield (d, e), float(matrix[d, e])

