"""Send requests to an expert (code, math, text, chat; general when unsure), score the router, or fit it again.

    python -m month4_moe route "What is 37 + 48?" "write a haiku about rain"   # expert and probability each
    echo "my loop never ends" | python -m month4_moe route                      # one request per line
    python -m month4_moe route --evaluate true     # held-out split + hand-written set: accuracy, ECE, confusion
    python -m month4_moe route --train true --router-dir runs/month4/router    # fit from the generator (~1 min)

The committed router (month4_moe/adapters/router) needs no training: a 4 x 384 logistic regression on the
offline MiniLM sentence embeddings, with a temperature and a fallback threshold fitted on a validation
split (`month4_moe.router`). `--train true` writes a new one, with its scores and confusion matrices.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from month4_moe.experts import GENERAL
from month4_moe.router import ROUTER_DIR, Router, RouterConfig, check_request, embed, plot_confusion, score
from shared.config import add_config_arguments, config_from_args

EVAL_SETS = {"heldout": "generator's held-out split", "handwritten": "hand-written requests"}


@dataclass
class RouteConfig:
    router_dir: str = field(default=str(ROUTER_DIR), metadata={"help": "the router's folder (read, or written "
                                                                       "by --train true)"})
    train: bool = field(default=False, metadata={"help": "fit a router from the generator and save it first"})
    evaluate: bool = field(default=False, metadata={"help": "score the router on both evaluation sets"})
    show: int = field(default=5, metadata={"help": "with --evaluate: print up to this many misrouted requests"})

    def __post_init__(self) -> None:
        if self.show < 0:
            raise ValueError("--show must be >= 0")


def _print_scores(name: str, s: dict[str, Any], labels: tuple[str, ...]) -> None:
    routed = "-" if s["accuracy_routed"] is None else f"{s['accuracy_routed']:.1%}"
    print(f"{name} ({EVAL_SETS.get(name, name)}, {s['n']} requests): accuracy {s['accuracy']:.1%}; "
          f"ECE {s['ece_uncalibrated']:.3f} -> {s['ece']:.3f} with temperature scaling; "
          f"routed to an expert {s['coverage']:.1%} (accuracy there {routed}), the rest to {GENERAL}")
    print("    true \\ routed " + " ".join(f"{label:>6}" for label in labels))
    for label, row in zip(labels, s["confusion"]):
        print(f"    {label:>14} " + " ".join(f"{v:>6}" for v in row))


def evaluate(router: Router, cfg: RouterConfig, show: int = 5, plots: Path | None = None) -> dict[str, Any]:
    """Scores of `router` on the generator's held-out split and on the hand-written set."""
    from month4_moe.requests import handwritten, make_requests

    sets = {"heldout": make_requests("heldout", cfg.n_heldout, cfg.data_seed), "handwritten": handwritten()}
    results = {}
    for name, requests in sets.items():
        vectors = embed([r.text for r in requests], router.embedding_model)
        s = results[name] = score(router, vectors, [r.label for r in requests])
        _print_scores(name, s, router.labels)
        wrong = [(r, d) for r, d in zip(requests, (router._decision(p) for p in router.probabilities(vectors)))
                 if d.candidate != r.label]
        for r, d in wrong[:show]:
            print(f"      {r.text!r}: {r.label}, routed to {d.candidate} ({d.probability:.2f})")
        if plots is not None:
            plot_confusion(s["confusion"], list(router.labels), list(router.labels), plots / f"confusion_{name}.png",
                           f"router, {EVAL_SETS[name]}: accuracy {s['accuracy']:.1%} of {s['n']}")
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("requests", nargs="*", metavar="REQUEST",
                        help="requests to route (none: read one per line from standard input)")
    add_config_arguments(parser.add_argument_group("routing"), RouteConfig)
    add_config_arguments(parser.add_argument_group("fitting (--train true) and scoring"), RouterConfig)


def main(args: argparse.Namespace) -> None:
    cfg, router_cfg = config_from_args(RouteConfig, args), config_from_args(RouterConfig, args)
    requests = list(args.requests)
    if not requests and not (cfg.train or cfg.evaluate) and not sys.stdin.isatty():
        requests = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    for text in requests:
        check_request(text)  # before any model loads
    if cfg.train:
        from month4_moe.router import train_router

        router, scores = train_router(router_cfg)
        folder = router.save(cfg.router_dir)
        for name in EVAL_SETS:
            _print_scores(name, scores[name], router.labels)
            plot_confusion(scores[name]["confusion"], list(router.labels), list(router.labels),
                           folder / f"confusion_{name}.png",
                           f"router, {EVAL_SETS[name]}: accuracy {scores[name]['accuracy']:.1%} of {scores[name]['n']}")
        print(f"[route] temperature {router.temperature:.3f}, fallback below {router.threshold:.3f}; saved in {folder}")
    else:
        router = Router.load(cfg.router_dir)
        if cfg.evaluate:
            evaluate(router, router_cfg, cfg.show)
    for text, d in zip(requests, router.decide_many(requests)):
        note = f" (top: {d.candidate})" if d.expert == GENERAL else ""
        print(f"{d.expert}\t{d.probability:.3f}{note}\t{text}")
    if not requests and not (cfg.train or cfg.evaluate):
        print("no request given: pass requests as arguments or on standard input (--help)")
