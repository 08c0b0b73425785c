"""Load Hugging Face `MambaForCausalLM` weights into our MambaLM (same parameter names).

    model = load_hf_mamba("path/to/saved/folder")   # config.json + model.safetensors (or shards, or .bin)
    model = load_hf_mamba(hf_model.state_dict())    # the config is read off the tensor shapes

Online users can point it at a downloaded `state-spaces/mamba-130m-hf` snapshot folder
(`huggingface_hub.snapshot_download`); nothing here touches the network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from month3_mamba.model import MambaConfig, MambaLM

LAYER = "backbone.layers.{}.mixer."


def config_from_hf(hf: Mapping) -> MambaConfig:
    """Our config from a transformers `MambaConfig` (its config.json dict)."""
    hidden = hf["hidden_size"]
    expand = hf.get("intermediate_size", hf.get("expand", 2) * hidden) // hidden
    rank = hf.get("time_step_rank", "auto")
    return MambaConfig(
        vocab_size=hf["vocab_size"],
        d_model=hidden,
        n_layer=hf["num_hidden_layers"],
        d_state=hf.get("state_size", 16),
        d_conv=hf.get("conv_kernel", 4),
        expand=expand,
        dt_rank=0 if rank == "auto" else int(rank),
        conv_bias=hf.get("use_conv_bias", True),
        bias=hf.get("use_bias", False),
        norm_eps=hf.get("layer_norm_epsilon", 1e-5),
        tie_embeddings=hf.get("tie_word_embeddings", True),
    )


def config_from_state_dict(sd: Mapping[str, Tensor]) -> MambaConfig:
    """Everything but norm_eps (default 1e-5, as transformers) follows from the shapes."""
    vocab, d_model = sd["backbone.embeddings.weight"].shape
    n_layer = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("backbone.layers."))
    d_inner, d_state = sd[LAYER.format(0) + "A_log"].shape
    head = sd.get("lm_head.weight")
    return MambaConfig(
        vocab_size=vocab,
        d_model=d_model,
        n_layer=n_layer,
        d_state=d_state,
        d_conv=sd[LAYER.format(0) + "conv1d.weight"].shape[-1],
        expand=d_inner // d_model,
        dt_rank=sd[LAYER.format(0) + "dt_proj.weight"].shape[1],
        conv_bias=LAYER.format(0) + "conv1d.bias" in sd,
        bias=LAYER.format(0) + "in_proj.bias" in sd,
        tie_embeddings=head is None or head.data_ptr() == sd["backbone.embeddings.weight"].data_ptr(),
    )


def read_hf_folder(path: Path) -> tuple[dict, dict[str, Tensor]]:
    """(config dict, state dict) from a `save_pretrained` folder: safetensors, sharded or not, or .bin."""
    config = json.loads((path / "config.json").read_text())
    files = sorted(path.glob("*.safetensors"))
    if files:
        from safetensors.torch import load_file

        sd = {k: v for f in files for k, v in load_file(f).items()}
    else:
        files = sorted(path.glob("pytorch_model*.bin"))
        if not files:
            raise FileNotFoundError(f"{path}: no *.safetensors or pytorch_model*.bin weights")
        sd = {k: v for f in files for k, v in torch.load(f, map_location="cpu", weights_only=True).items()}
    return config, sd


def load_hf_mamba(path_or_state_dict: str | Path | Mapping[str, Tensor], config: MambaConfig | None = None) -> MambaLM:
    """A MambaLM holding the weights of a Hugging Face MambaForCausalLM (folder or state dict)."""
    if isinstance(path_or_state_dict, Mapping):
        sd = dict(path_or_state_dict)
        cfg = config or config_from_state_dict(sd)
    else:
        hf_config, sd = read_hf_folder(Path(path_or_state_dict))
        cfg = config or config_from_hf(hf_config)
    # Older checkpoints call the embedding "embedding" (transformers renames it the same way).
    sd = {k.replace("backbone.embedding.", "backbone.embeddings."): v for k, v in sd.items()}
    if cfg.tie_embeddings:
        sd["lm_head.weight"] = sd["backbone.embeddings.weight"]
    model = MambaLM(cfg)
    model.load_state_dict(sd)
    return model.eval()
