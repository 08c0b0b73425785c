"""The recall model families behind one table, and the checkpoint `train-recall` exports.

Each family (`--arch`) has its config class - `train-recall` takes that family's options and
their defaults from it - and its model. An exported checkpoint records the family, the model's,
task's and training's configs as plain dicts and the weights as tensors, so it loads with
`torch.load(weights_only=True)`: a checkpoint from elsewhere cannot run code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from torch import nn

from month1_transformer.model import GPT, POS_ENCODINGS, GPTConfig
from month3_mamba.checks import require_at_least
from month3_mamba.delta import DeltaConfig, DeltaLM
from month3_mamba.hybrid import HybridConfig, HybridLM
from month3_mamba.model import MambaConfig, MambaLM
from month3_mamba.recall import RecallTaskConfig
from month3_mamba.rwkv import RWKVLM, RWKVConfig
from shared import checkpoint
from shared.errors import UserError
from shared.training import TrainConfig


@dataclass
class TransformerConfig:
    """Month 1's GPT as the recall baseline, at the other families' scale: bytes, RMSNorm, no biases.
    Its block size is the task's longest training document (learned positions stop there)."""

    vocab_size: int = field(default=256, metadata={"help": "vocabulary size (256: bytes)"})
    d_model: int = field(default=64, metadata={"help": "model width"})
    n_layer: int = field(default=2, metadata={"help": "transformer blocks"})
    n_head: int = field(default=4, metadata={"help": "attention heads"})
    pos_enc: str = field(default="learned", metadata={"help": "positions", "choices": POS_ENCODINGS})

    def __post_init__(self) -> None:
        require_at_least(self, 1, "vocab_size", "d_model", "n_layer", "n_head")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_head={self.n_head}")
        if self.pos_enc not in POS_ENCODINGS:
            raise ValueError(f"pos_enc must be one of {POS_ENCODINGS}, got {self.pos_enc!r}")

    def gpt_config(self, block_size: int) -> GPTConfig:
        return GPTConfig(vocab_size=self.vocab_size, block_size=block_size, n_layer=self.n_layer, n_head=self.n_head,
                         n_embd=self.d_model, pos_enc=self.pos_enc, norm="rmsnorm", bias=False)


DEFAULT_CKPT = Path(__file__).resolve().parent / "checkpoints" / "recall.pt"  # the committed reader ({key: value})
MEMORY_CKPT = DEFAULT_CKPT.parent / "memory.pt"  # the memory reader (sentences): month 6's long memory

# The families that read a file through a constant-size state: arch -> (config, model).
STREAMING = {"mamba": (MambaConfig, MambaLM), "hybrid": (HybridConfig, HybridLM), "rwkv": (RWKVConfig, RWKVLM),
             "delta": (DeltaConfig, DeltaLM)}
CONFIGS: dict[str, type] = {**{arch: cls for arch, (cls, _) in STREAMING.items()}, "transformer": TransformerConfig}
ARCHS = tuple(CONFIGS)


def build_model(arch: str, cfg, task: RecallTaskConfig) -> nn.Module:
    """A new recall model of family `arch` from its config (CONFIGS[arch])."""
    if arch in STREAMING:
        return STREAMING[arch][1](cfg)
    return GPT(cfg.gpt_config(block_size=task.max_seq_len))


def export(model: nn.Module, arch: str, task: RecallTaskConfig, train_cfg: TrainConfig, seconds: float,
           path: str | Path) -> Path:
    """The inference checkpoint: weights and configs, no optimizer."""
    state = {
        "arch": arch,
        "model": model.state_dict(),
        "model_config": model.config_dict(),
        "task_config": asdict(task),
        "train_config": asdict(train_cfg),
        "train_seconds": seconds,
    }
    return checkpoint.atomic_save(state, path)


def read_checkpoint(path: str | Path) -> dict:
    """The dict of an exported or a Trainer checkpoint of train-recall; anything else is a UserError."""
    try:
        state = checkpoint.load(path)
    except (OSError, UserError):
        raise  # a missing or unreadable file, or one refused by checkpoint.load: shared.cli reports it
    except Exception as err:  # torch.load fails in many ways on bytes that are not a checkpoint
        raise UserError(f"{path} is not a PyTorch checkpoint that loads safely ({type(err).__name__}): "
                        "pass one written by train-recall") from None
    if not isinstance(state, dict) or not {"arch", "model", "model_config", "task_config"} <= state.keys():
        raise UserError(f"{path} is not a train-recall checkpoint (it records no recall model): pass one "
                        "written by `train-recall --export`, or the ckpt.pt in its --out-dir")
    return state


def load_recall_model(path: str | Path, fused: bool = True):
    """(model in eval mode, task config) from an exported or a Trainer checkpoint of train-recall.
    `fused`: Mamba layers scan with the fused C++ loop where it builds (the same maths as the
    recorded scan, tested equal; several times faster on CPU)."""
    state = read_checkpoint(path)
    arch = state["arch"]
    if arch not in CONFIGS:
        raise UserError(f"{path} holds a {arch!r} model; this version knows {', '.join(ARCHS)}")
    try:
        task = RecallTaskConfig(**state["task_config"])
        if arch in STREAMING:
            config_cls, model_cls = STREAMING[arch]
            config = config_cls(**state["model_config"])
            if fused and hasattr(config, "scan"):
                config.scan = "fused"
            model = model_cls(config)
        else:  # the transformer records the GPTConfig it was built with
            model = GPT(GPTConfig(**state["model_config"]))
        model.load_state_dict(state["model"])
    except (TypeError, ValueError, RuntimeError) as err:  # configs or weights of another version
        detail = " ".join(str(err).split())  # load_state_dict's message spans many lines
        detail = detail if len(detail) <= 160 else detail[:160] + "..."
        raise UserError(f"{path} was written by another version of month3_mamba: its {arch} model does not fit "
                        f"this one ({detail}); train it again with train-recall") from None
    return model.eval(), task
