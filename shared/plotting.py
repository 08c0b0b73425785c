"""Plot helpers that write PNG files.

They build `matplotlib.figure.Figure` objects directly instead of going through pyplot,
so they need no screen and never change the backend of the caller (a notebook keeps its
inline plots). Each returns the PNG's path; `IPython.display.Image(path)` shows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib import colormaps
from matplotlib.figure import Figure


def plot_history(history, path: str | Path, title: str = "training loss") -> Path:
    """Per-step training loss (faint), evaluated train/val loss (markers), and the LR."""
    h = history if isinstance(history, Mapping) else history.as_dict()
    fig = Figure(figsize=(7, 5))
    ax, ax_lr = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot(h["step"], h["loss"], alpha=0.35, label="train (per step)")
    if h["eval_step"]:
        ax.plot(h["eval_step"], h["eval_train"], "o-", label="train (eval)")
        ax.plot(h["eval_step"], h["eval_val"], "s-", label="val (eval)")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    ax_lr.plot(h["step"], h["lr"], color="gray")
    ax_lr.set_ylabel("lr")
    ax_lr.set_xlabel("step")
    ax_lr.grid(alpha=0.3)
    return save(fig, path)


def plot_series(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: str | Path,
    xlabel: str,
    ylabel: str,
    title: str = "",
    logx: bool = False,
    logy: bool = False,
    ylim: tuple[float, float] | None = None,
) -> Path:
    """One line per name: {name: (xs, ys)}; handy for measurements against length. `ylim`: e.g. (0, 1) for an
    accuracy, so that a flat line at 0 does not fill the plot. Past 10 lines the colours come from a 20-colour
    map (matplotlib's default cycle repeats after 10) and the legend moves beside the plot."""
    many = len(series) > 10
    fig = Figure(figsize=(9.5 if many else 7, 4))
    ax = fig.subplots()
    colours = colormaps["tab20" if many else "tab10"].colors
    for i, (name, (xs, ys)) in enumerate(series.items()):
        ax.plot(xs, ys, "o-", label=name, color=colours[i % len(colours)])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    if title:
        ax.set_title(title)
    ax.legend(**({"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": "small"} if many else {}))
    ax.grid(alpha=0.3)
    return save(fig, path)


def save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
