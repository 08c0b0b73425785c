"""The request router: which expert (code, math, text, chat) should answer a whole request, and how sure it is.

    from month4_moe.router import route
    route("What is 37 + 48?")          # ('math', 0.98): the committed router, offline, no training
    route("hmm")                       # ('general', 0.41): unsure -> the base model without an adapter

A linear classifier (logistic regression, a 4 x 384 matrix and a bias) on the offline all-MiniLM-L6-v2
sentence embeddings (unit length), trained on `requests.make_requests("train")`. Its logits are divided by
a temperature fitted on the "val" split (temperature scaling: one number, chosen to minimise the negative
log-likelihood, so the probabilities mean what they say; measured by the expected calibration error, ECE).
When the top probability is below a threshold, also chosen on "val" (the lowest one at which the requests
it still routes are wrong at most `max_error` of the time, and never below 0.5), the answer is GENERAL.
Scored on the generator's held-out split and on the hand-written set (`requests.HANDWRITTEN`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from month4_moe.experts import ADAPTERS_DIR, DOMAINS, GENERAL
from shared.errors import UserError

ROUTER_DIR = ADAPTERS_DIR / "router"  # committed: router.safetensors + router.json + confusion matrices
WEIGHTS, META = "router.safetensors", "router.json"


class BadRequest(UserError, ValueError):
    """A request the router cannot route (empty, not text)."""


def check_request(text: Any) -> str:
    if not isinstance(text, str):
        raise BadRequest(f"a request must be a string, got {type(text).__name__}")
    if not text.strip():
        raise BadRequest("empty request: give the text of the user's request (it has no words to route)")
    return text


# ---------------------------------------------------------------- embeddings


@lru_cache(maxsize=2)
def _embedder(name: str):
    from sentence_transformers import SentenceTransformer

    from shared.models import embedding_model_path

    return SentenceTransformer(embedding_model_path(name), device="cpu")


def embed(texts: list[str], model: str = "all-MiniLM-L6-v2", batch_size: int = 64) -> torch.Tensor:
    """(n, 384) unit-length sentence embeddings, fp32 (the model is loaded once per process)."""
    vectors = _embedder(model).encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False)
    return torch.from_numpy(np.asarray(vectors, dtype=np.float32))


# ---------------------------------------------------------------- calibration


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = 10) -> float:
    """ECE: the top probability against the accuracy, in `bins` equal-width confidence bins, weighted by
    how many predictions fall in each (0: the confidence is the accuracy)."""
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    ece = torch.zeros(())
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        inside = (confidence > lo) & (confidence <= hi) if i else (confidence >= lo) & (confidence <= hi)
        if inside.any():
            ece += inside.float().mean() * (confidence[inside].mean() - correct[inside].mean()).abs()
    return float(ece)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T > 0 minimising the cross-entropy of softmax(logits / T) (optimised over log T)."""
    log_t = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


def choose_threshold(probs: torch.Tensor, labels: torch.Tensor, max_error: float = 0.02,
                     floor: float = 0.5) -> float:
    """The lowest confidence threshold t >= `floor` at which the predictions with top probability >= t are
    wrong at most `max_error` of the time (1.0 if none is: then everything falls back)."""
    confidence, predicted = probs.max(dim=1)
    wrong = (predicted != labels).float()
    for t in sorted({floor, *confidence[confidence >= floor].tolist()}):
        kept = confidence >= t
        if kept.any() and wrong[kept].mean() <= max_error:
            return float(t)
    return 1.0


def confusion_matrix(predicted: list[str], truth: list[str], labels: list[str]) -> list[list[int]]:
    """counts[true][predicted], rows and columns in `labels` order."""
    index = {label: i for i, label in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for p, t in zip(predicted, truth):
        counts[index[t]][index[p]] += 1
    return counts


def plot_confusion(counts: list[list[int]], rows: list[str], cols: list[str], path: str | Path, title: str) -> Path:
    """The confusion matrix as a PNG (true domain down, routed-to across)."""
    from matplotlib.figure import Figure

    from shared.plotting import save

    fig = Figure(figsize=(5.2, 4.2))
    ax = fig.subplots()
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("routed to")
    ax.set_ylabel("true domain")
    ax.set_title(title, fontsize=10)
    top = max(max(r) for r in counts) or 1
    for i, row in enumerate(counts):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > top / 2 else "black")
    return save(fig, path)


# ---------------------------------------------------------------- the router


@dataclass
class Decision:
    expert: str  # a domain, or GENERAL when the top probability is below the threshold
    probability: float  # calibrated probability of the top domain
    candidate: str  # the top domain (what `expert` would be without the fallback)
    probabilities: dict[str, float] = field(default_factory=dict)


@dataclass
class RouterConfig:
    n_train: int = field(default=800, metadata={"help": "generated training requests (the domains take turns)"})
    n_val: int = field(default=160, metadata={"help": "validation requests (temperature and threshold)"})
    n_heldout: int = field(default=320, metadata={"help": "held-out requests scored at the end"})
    data_seed: int = field(default=0, metadata={"help": "seed of the request generator"})
    l2: float = field(default=1e-3, metadata={"help": "L2 penalty on the weights of the logistic regression"})
    max_error: float = field(default=0.02, metadata={"help": "error allowed among the requests routed (not "
                                                             "falling back) on val; sets the threshold"})
    embedding_model: str = field(default="all-MiniLM-L6-v2", metadata={"help": "sentence-embedding model"})

    def __post_init__(self) -> None:
        if min(self.n_train, self.n_val, self.n_heldout) < len(DOMAINS):
            raise ValueError(f"--n-train, --n-val and --n-heldout must be at least {len(DOMAINS)}")
        if self.l2 < 0 or not 0 <= self.max_error < 1:
            raise ValueError("--l2 must be >= 0 and --max-error in [0, 1)")


class Router:
    """logits = (embedding @ weight.T + bias) / temperature; GENERAL below `threshold`."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, temperature: float = 1.0, threshold: float = 0.5,
                 labels: tuple[str, ...] = DOMAINS, embedding_model: str = "all-MiniLM-L6-v2",
                 info: dict[str, Any] | None = None) -> None:
        if weight.dim() != 2 or weight.shape[0] != len(labels) or bias.shape != (len(labels),):
            raise ValueError(f"weight {tuple(weight.shape)} and bias {tuple(bias.shape)} do not fit {len(labels)} "
                             "labels")
        self.weight, self.bias = weight.float(), bias.float()
        self.temperature, self.threshold = float(temperature), float(threshold)
        self.labels, self.embedding_model = tuple(labels), embedding_model
        self.info = info or {}

    # -- scoring
    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        return embeddings @ self.weight.T + self.bias

    def probabilities(self, embeddings: torch.Tensor, calibrated: bool = True) -> torch.Tensor:
        logits = self.logits(embeddings)
        return torch.softmax(logits / (self.temperature if calibrated else 1.0), dim=-1)

    def decide_many(self, texts: list[str]) -> list[Decision]:
        texts = [check_request(t) for t in texts]
        probs = self.probabilities(embed(texts, self.embedding_model)) if texts else torch.zeros(0, len(self.labels))
        return [self._decision(p) for p in probs]

    def decide(self, text: str) -> Decision:
        return self.decide_many([text])[0]

    def route(self, text: str) -> tuple[str, float]:
        """(expert, probability): the seam month 6 calls."""
        d = self.decide(text)
        return d.expert, d.probability

    def _decision(self, p: torch.Tensor) -> Decision:
        top = int(p.argmax())
        probability, candidate = float(p[top]), self.labels[top]
        expert = candidate if probability >= self.threshold else GENERAL
        return Decision(expert, probability, candidate, dict(zip(self.labels, map(float, p))))

    # -- files
    def save(self, folder: str | Path) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"weight": self.weight.contiguous(), "bias": self.bias.contiguous()}, str(folder / WEIGHTS))
        meta = {"labels": list(self.labels), "temperature": self.temperature, "threshold": self.threshold,
                "embedding_model": self.embedding_model, **self.info}
        (folder / META).write_text(json.dumps(meta, indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path = ROUTER_DIR) -> Router:
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / WEIGHTS).is_file() or not (folder / META).is_file():
            raise FileNotFoundError(f"not a router folder (needs {WEIGHTS} and {META}): {folder}")
        tensors = load_file(str(folder / WEIGHTS))
        meta = json.loads((folder / META).read_text())
        info = {k: v for k, v in meta.items() if k not in ("labels", "temperature", "threshold", "embedding_model")}
        return cls(tensors["weight"], tensors["bias"], meta["temperature"], meta["threshold"],
                   tuple(meta["labels"]), meta["embedding_model"], info)


@lru_cache(maxsize=1)
def default_router() -> Router:
    return Router.load(ROUTER_DIR)


def route(text: str) -> tuple[str, float]:
    """(expert, probability) from the committed router: a domain of DOMAINS, or GENERAL when unsure."""
    return default_router().route(text)


# ---------------------------------------------------------------- training and scoring


def fit_linear(x: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression, full batch, L-BFGS: mean cross-entropy + l2 * |W|^2 (convex, so
    the result does not depend on a seed)."""
    weight = torch.zeros(n_classes, x.size(1), requires_grad=True)
    bias = torch.zeros(n_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=500, tolerance_grad=1e-7,
                                  line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight.T + bias, y) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach(), bias.detach()


def score(router: Router, embeddings: torch.Tensor, truth: list[str]) -> dict[str, Any]:
    """Accuracy (top domain), the confusion matrix, ECE before and after temperature scaling, and what the
    fallback does: the share routed to an expert (coverage) and the accuracy of those."""
    labels = torch.tensor([router.labels.index(t) for t in truth])
    probs = router.probabilities(embeddings)
    confidence, predicted = probs.max(dim=1)
    correct = predicted == labels
    kept = confidence >= router.threshold
    names = [router.labels[i] for i in predicted.tolist()]
    routed = [n if k else GENERAL for n, k in zip(names, kept.tolist())]
    return {
        "n": len(truth),
        "accuracy": float(correct.float().mean()),
        "ece_uncalibrated": expected_calibration_error(router.probabilities(embeddings, calibrated=False), labels),
        "ece": expected_calibration_error(probs, labels),
        "coverage": float(kept.float().mean()),
        "accuracy_routed": float(correct[kept].float().mean()) if kept.any() else None,
        "fallback_errors_avoided": int((~correct & ~kept).sum()),
        "fallback_correct_lost": int((correct & ~kept).sum()),
        "confusion": confusion_matrix(names, truth, list(router.labels)),
        "confusion_with_fallback": confusion_matrix(routed, truth, [*router.labels, GENERAL])[: len(router.labels)],
    }


def train_router(cfg: RouterConfig) -> tuple[Router, dict[str, Any]]:
    """Fit the classifier on "train", the temperature and the threshold on "val"; score on "heldout" and
    on the hand-written set. Returns the router (its `info` holds the scores) and the scores."""
    from month4_moe.requests import handwritten, make_requests

    sets = {"train": make_requests("train", cfg.n_train, cfg.data_seed),
            "val": make_requests("val", cfg.n_val, cfg.data_seed),
            "heldout": make_requests("heldout", cfg.n_heldout, cfg.data_seed),
            "handwritten": handwritten()}
    vectors = {name: embed([r.text for r in reqs], cfg.embedding_model) for name, reqs in sets.items()}
    ids = {name: torch.tensor([DOMAINS.index(r.label) for r in reqs]) for name, reqs in sets.items()}
    weight, bias = fit_linear(vectors["train"], ids["train"], len(DOMAINS), cfg.l2)
    router = Router(weight, bias, 1.0, 0.5, DOMAINS, cfg.embedding_model)
    router.temperature = fit_temperature(router.logits(vectors["val"]), ids["val"])
    router.threshold = choose_threshold(router.probabilities(vectors["val"]), ids["val"], cfg.max_error)
    scores = {name: score(router, vectors[name], [r.label for r in sets[name]]) for name in sets}
    router.info = {"config": asdict(cfg), "scores": scores,
                   "command": "python -m month4_moe route --train true"}
    return router, scores
