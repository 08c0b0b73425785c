"""Train the four expert LoRA adapters on SmolLM2 (month 2's fine-tuning code) and compare them.

    python -m month4_moe train-experts --config experts              # the committed adapters (~40 min, 1 thread)
    python -m month4_moe train-experts --domains math --max-steps 20 # a quick try -> runs/month4/experts/math
    python -m month4_moe train-experts --train false --config experts   # only re-measure the committed adapters

Each domain gets its own LoRA adapter (`month4_moe.experts` has the data): month 2's `add_lora`,
`encode_pair`, `answer_loss` (loss on the answer tokens only) and `AdapterTrainer` (the shared Trainer,
checkpoints holding only the adapter, resumable), run one domain after another on a fresh base.
A domain whose adapter folder already holds a `metrics.json` of the same settings is skipped.

Then the comparison a user would make, on every domain's held-out sets: the base model, base + the
domain's own adapter, and one model with all four adapters merged (`add_weighted_adapter`, "cat": the
sum of the four low-rank updates, what merging each into the weights gives), written to
ADAPTERS_DIR/comparison.json.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from month4_moe.experts import DOMAINS, encode_pairs, evaluation_sets, make_pairs, score_domain
from shared.config import add_config_arguments, config_from_args
from shared.errors import UserError
from shared.models import SMOLLM2
from shared.runtime import seed_everything, set_threads
from shared.training import TrainConfig

RUN_DIR = "runs/month4/experts"  # checkpoints per domain, and the adapters unless --adapters-dir says otherwise
MERGED = "merged"  # the adapter name of the four merged into one


@dataclass
class ExpertsConfig:
    domains: str = field(default=",".join(DOMAINS), metadata={"help": "comma-separated domains to train and compare"})
    model: str = field(default=SMOLLM2, metadata={"help": "chat model: 'smollm2' (offline), a folder or a hub id"})
    r: int = field(default=8, metadata={"help": "LoRA rank"})
    alpha: int = field(default=16, metadata={"help": "LoRA alpha (the update is scaled by alpha / r)"})
    dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA branch"})
    target_modules: str = field(default="q_proj,k_proj,v_proj,o_proj",
                                metadata={"help": "comma-separated Linear layers that get LoRA"})
    batch_size: int = field(default=8, metadata={"help": "examples per step"})
    max_length: int = field(default=256, metadata={"help": "longest example in tokens; longer ones are dropped"})
    n_train: int = field(default=800, metadata={"help": "generated training examples per domain (before dropping)"})
    eval_n: int = field(default=100, metadata={"help": "held-out examples per evaluation set"})
    data_seed: int = field(default=0, metadata={"help": "seed of the example generators"})
    adapters_dir: str = field(default="", metadata={"help": "where the adapters go, one folder per domain "
                                                            "(empty: OUT_DIR)"})
    train: bool = field(default=True, metadata={"help": "train the domains' adapters (false: compare existing ones)"})
    evaluate: bool = field(default=True, metadata={"help": "score base and adapter on the held-out sets right after "
                                                           "training (else the comparison does)"})
    compare: bool = field(default=True, metadata={"help": "base vs own adapter vs all four merged, per domain"})
    threads: int = field(default=0, metadata={"help": "torch threads (0: $HYBRID_AI_THREADS or automatic)"})

    def __post_init__(self) -> None:
        unknown = [d for d in self.domain_list() if d not in DOMAINS]
        if unknown or not self.domain_list():
            raise ValueError(f"--domains {self.domains!r}: choose from {', '.join(DOMAINS)}")
        if min(self.r, self.alpha, self.batch_size, self.max_length, self.n_train, self.eval_n) < 1:
            raise ValueError("--r, --alpha, --batch-size, --max-length, --n-train and --eval-n must be at least 1")
        if not 0 <= self.dropout < 1 or self.threads < 0:
            raise ValueError(f"--dropout must be in [0, 1) (got {self.dropout}); --threads >= 0")

    def domain_list(self) -> list[str]:
        return [d.strip() for d in self.domains.split(",") if d.strip()]

    def lora(self):
        """The same LoRA settings as month 2's FinetuneConfig (whose `add_lora` builds the adapter)."""
        from month2_llm_core.finetune import FinetuneConfig

        return FinetuneConfig(model=self.model, r=self.r, alpha=self.alpha, dropout=self.dropout,
                              target_modules=self.target_modules)


TRAIN_DEFAULTS: dict[str, Any] = {
    "max_steps": 160,
    "lr": 2e-3,
    "min_lr": 1e-4,
    "warmup_steps": 10,
    "weight_decay": 0.0,
    "eval_interval": 40,
    "eval_batches": 2,
    "ckpt_interval": 20,
    "out_dir": RUN_DIR,
}


def adapter_root(cfg: ExpertsConfig, train_cfg: TrainConfig) -> Path:
    return Path(cfg.adapters_dir or train_cfg.out_dir or RUN_DIR)


def _settings(cfg: ExpertsConfig, train_cfg: TrainConfig) -> dict[str, Any]:
    """What decides an adapter's weights (a finished domain with the same settings is not trained again)."""
    keep = ("model", "r", "alpha", "dropout", "target_modules", "batch_size", "max_length", "n_train", "data_seed")
    train = {k: v for k, v in asdict(train_cfg).items() if k not in ("progress", "resume", "out_dir")}
    return {"experts": {k: getattr(cfg, k) for k in keep}, "train": train}


# ---------------------------------------------------------------- one domain


def train_expert(domain: str, cfg: ExpertsConfig, train_cfg: TrainConfig) -> dict[str, Any]:
    """Train `domain`'s adapter, save it with its loss curve, model card and metrics (base vs adapter on
    the domain's held-out sets); returns the metrics."""
    from month2_llm_core.finetune import AdapterTrainer, add_lora, answer_loss, make_get_batch
    from month2_llm_core.hub import explain_load_errors
    from month2_llm_core.toolcall_model import load_base_model, save_adapter
    from shared.plotting import plot_history

    out = adapter_root(cfg, train_cfg) / domain
    settings = _settings(cfg, train_cfg)
    if (out / "metrics.json").is_file() and json.loads((out / "metrics.json").read_text()).get("settings") == settings:
        print(f"[experts] {domain}: already trained with these settings ({out}/metrics.json); skipped")
        return json.loads((out / "metrics.json").read_text())
    seed_everything(train_cfg.seed)
    with explain_load_errors(cfg.model):
        model, tokenizer = load_base_model(cfg.model)
    model = add_lora(model, cfg.lora())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    try:
        train_pairs = make_pairs(domain, "train", cfg.n_train, cfg.data_seed)
        sets = evaluation_sets(domain, cfg.eval_n, cfg.data_seed)
    except ValueError as err:  # more distinct examples than a generator can make
        raise UserError(f"--n-train {cfg.n_train} / --eval-n {cfg.eval_n} for {domain}: {err}") from None
    encoded = {"train": encode_pairs(tokenizer, train_pairs, cfg.max_length),
               "val": encode_pairs(tokenizer, sets["heldout"], cfg.max_length)}
    if not encoded["train"] or not encoded["val"]:
        raise UserError(f"--max-length {cfg.max_length}: every {domain} example of a split is longer")
    run_cfg = TrainConfig(**{**asdict(train_cfg), "out_dir": str(Path(train_cfg.out_dir or RUN_DIR) / domain)})
    trainer = AdapterTrainer(model, make_get_batch(encoded, cfg.batch_size, tokenizer.pad_token_id), run_cfg,
                             loss_fn=answer_loss)
    print(f"[experts] {domain}: LoRA r={cfg.r} on {cfg.target_modules}, {trainable / 1e6:.2f}M trainable; "
          f"{len(encoded['train'])} train examples ({len(train_pairs) - len(encoded['train'])} longer than "
          f"{cfg.max_length} dropped); step {trainer.step}/{run_cfg.max_steps}")
    start_step, start = trainer.step, time.perf_counter()
    history = trainer.fit()
    steps = trainer.step - start_step
    seconds_per_step = (time.perf_counter() - start) / steps if steps else None
    save_adapter(model, out, cfg.model)
    if history.step:
        plot_history(history, out / "loss.png", title=f"{domain} expert: loss on answer tokens")
    metrics: dict[str, Any] = {
        "domain": domain,
        "settings": settings,
        "command": command_line(cfg, train_cfg, domain),
        "trainable_params": trainable,
        "train_examples": len(encoded["train"]),
        "steps": trainer.step,
        "seconds_per_step": seconds_per_step,
        "threads": set_threads(cfg.threads or None),
        "first_losses": history.loss[:5],
        "last_losses": history.loss[-5:],
        "eval_val_loss": dict(zip(history.eval_step, history.eval_val)),
    }
    if cfg.evaluate:
        model.eval()
        metrics["eval"] = {"eval_n": cfg.eval_n, "data_seed": cfg.data_seed}
        metrics["adapter"] = score_domain(model, tokenizer, domain, sets)
        with model.disable_adapter():
            metrics["base"] = score_domain(model, tokenizer, domain, sets)
        print(f"[experts] {domain}: {_summary(metrics['base'], metrics['adapter'])}")
    write_metrics(out, metrics)
    print(f"[experts] {domain}: adapter, model card, loss curve and metrics in {out}")
    return metrics


def write_metrics(out: Path, metrics: dict[str, Any]) -> None:
    """metrics.json, and the model card written from it."""
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    _write_card(out, metrics)


def _headline(scores: dict[str, Any]) -> str:
    """The domain's figure on one evaluation set: exact answers for math, loss otherwise."""
    return f"exact {scores['exact']:.0%}" if "exact" in scores else f"loss {scores['loss']:.3f}"


def _summary(base: dict[str, Any], tuned: dict[str, Any]) -> str:
    return "; ".join(f"{name}: base {_headline(base[name])} -> adapter {_headline(tuned[name])}" for name in base)


def command_line(cfg: ExpertsConfig, train_cfg: TrainConfig, domain: str) -> str:
    """The CLI command that trains this domain's adapter again (options that differ from the defaults)."""
    parts = ["python -m month4_moe train-experts", f"--domains {domain}"]
    for config, defaults in ((cfg, asdict(ExpertsConfig())), (train_cfg, asdict(train_config()))):
        for key, value in asdict(config).items():
            if key not in ("domains", "progress", "resume", "threads", "compare", "train") and value != defaults[key]:
                parts.append(f"--{key.replace('_', '-')} {str(value).lower() if isinstance(value, bool) else value}")
    return " ".join(parts)


def train_config(**overrides: Any) -> TrainConfig:
    return TrainConfig(**{**TRAIN_DEFAULTS, **overrides})


def _write_card(out: Path, m: dict[str, Any]) -> None:
    from month2_llm_core.hub import CardInfo, write_model_card

    s, t = m["settings"]["experts"], m["settings"]["train"]
    merged = m.get("merged", {})
    rows = "\n".join(f"| {name} ({m['base'][name]['n']} examples) | {_headline(m['base'][name])} | "
                     f"{_headline(m['adapter'][name])} | "
                     f"{_headline(merged[name]) if name in merged else '-'} | {m['base'][name]['loss']:.3f} | "
                     f"{m['adapter'][name]['loss']:.3f} |" for name in m.get("base", {}))
    scores = ("| evaluation set | base | + this adapter | all four merged | base loss | adapter loss |\n"
              "|---|---|---|---|---|---|\n" + rows + "\n\nMath: exact = the last number of the greedy answer "
              "is the result; loss = mean cross-entropy per answer token (teacher-forced, chat template). "
              "All four merged: `add_weighted_adapter(..., combination_type='cat')`, the sum of the four updates."
              ) if rows else "Not scored yet: `python -m month4_moe train-experts --train false --config experts`."
    write_model_card(out, CardInfo(
        title=f"SmolLM2-135M-Instruct {m['domain']} expert LoRA adapter",
        summary=f"One of month 4's four experts (code, math, text, chat). `month4_moe.experts.MixtureOfAdapters` keeps "
                f"it resident next to the other three on one base model and switches to it when the router sends a "
                f"request to `{m['domain']}`. Data: `month4_moe.experts.make_pairs({m['domain']!r}, ...)`.",
        library="peft",
        tags=["lora", "mixture-of-experts", m["domain"]],
        how_made=f"LoRA r={s['r']}, alpha={s['alpha']}, dropout={s['dropout']} on `{s['target_modules']}`, "
                 f"{m['trainable_params']:,} parameters, trained with month 2's fine-tuning code (loss on the answer "
                 f"tokens) for {m['steps']} steps of batch {s['batch_size']} on {m['train_examples']} generated "
                 f"examples; AdamW lr {t['lr']}, cosine to {t['min_lr']}, seed {t['seed']}; "
                 f"{m['seconds_per_step'] or 0:.1f} s/step on {m['threads']} CPU thread(s), with other jobs on the "
                 f"machine. Base: the offline Q4_1 GGUF of SmolLM2 dequantized. Curve: `loss.png`.",
        sections={"Held-out scores (data the adapter never saw)": scores},
        commands=[f"OMP_NUM_THREADS=1 HYBRID_AI_THREADS=1 {m['command']}"],
    ))


# ---------------------------------------------------------------- the comparison


def compare_experts(root: Path, domains: list[str], eval_n: int, data_seed: int = 0,
                    model_name: str = SMOLLM2) -> dict[str, Any]:
    """Per domain, on its held-out sets: base, base + own adapter, base + all four adapters merged."""
    from month4_moe.experts import MixtureOfAdapters

    start = time.perf_counter()
    moa = MixtureOfAdapters.load(root, model_name=model_name, router_dir=None)
    moa.add_merged(MERGED)
    results: dict[str, Any] = {}
    for domain in domains:
        sets = evaluation_sets(domain, eval_n, data_seed)
        metrics = json.loads((root / domain / "metrics.json").read_text())
        same_data = metrics.get("eval") == {"eval_n": eval_n, "data_seed": data_seed}
        results[domain] = {}
        for label, expert in (("base", None), ("adapter", domain), ("merged", MERGED)):
            if same_data and label in metrics:  # scored right after training, on these very sets
                results[domain][label] = metrics[label]
                continue
            with moa.use(expert):
                results[domain][label] = score_domain(moa.model, moa.tokenizer, domain, sets)
        write_metrics(root / domain, {**metrics, **results[domain],
                                      "eval": {"eval_n": eval_n, "data_seed": data_seed}})
        print(f"[compare] {domain}: " + "; ".join(
            f"{name}: base {_headline(results[domain]['base'][name])}, own adapter "
            f"{_headline(results[domain]['adapter'][name])}, four merged {_headline(results[domain]['merged'][name])}"
            for name in sets))
    report = {"domains": results, "eval_n": eval_n, "data_seed": data_seed, "adapters": str(root),
              "seconds": time.perf_counter() - start,
              "merge": "add_weighted_adapter(combination_type='cat', weights 1): the sum of the four updates"}
    (root / "comparison.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"[compare] written to {root / 'comparison.json'}")
    return report


# ---------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser.add_argument_group("experts"), ExpertsConfig)
    add_config_arguments(parser.add_argument_group("training loop"), TrainConfig, defaults=TRAIN_DEFAULTS)


def main(args: argparse.Namespace) -> None:
    cfg, train_cfg = config_from_args(ExpertsConfig, args), config_from_args(TrainConfig, args)
    threads = set_threads(cfg.threads or None)
    root = adapter_root(cfg, train_cfg)
    print(f"[experts] domains {cfg.domains}; adapters in {root}; {threads} threads")
    if cfg.train:
        for domain in cfg.domain_list():
            train_expert(domain, cfg, train_cfg)
    if cfg.compare:
        missing = [d for d in DOMAINS if not (root / d / "adapter_config.json").is_file()]
        if missing:
            raise UserError(f"no trained adapter for {', '.join(missing)} in {root}: train them first "
                            "(--train true), or point --adapters-dir at the committed month4_moe/adapters")
        compare_experts(root, cfg.domain_list(), cfg.eval_n, cfg.data_seed, cfg.model)

