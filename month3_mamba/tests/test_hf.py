"""Real weights interoperate: a randomly initialised tiny transformers MambaForCausalLM, saved to a
folder, loads into our MambaLM and gives the same logits (full sequence: transformers' CPU
fallback restarts its state at every multi-token call, so chunked comparisons use our own forward)."""

import os

import pytest
import torch

from month3_mamba.hf import config_from_state_dict, load_hf_mamba

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub (kernels, configs)
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def hf_model_dir(tmp_path_factory):
    torch.manual_seed(0)
    cfg = transformers.MambaConfig(
        vocab_size=70, hidden_size=32, state_size=8, num_hidden_layers=2, expand=2, conv_kernel=4,
        time_step_rank=3, layer_norm_epsilon=1e-5,
    )
    model = transformers.MambaForCausalLM(cfg).eval()
    path = tmp_path_factory.mktemp("tiny-mamba")
    model.save_pretrained(path)
    return path, model


def test_folder_loads_with_equal_logits(hf_model_dir):
    path, hf = hf_model_dir
    ours = load_hf_mamba(path)
    assert ours.cfg.d_model == 32 and ours.cfg.d_inner == 64 and ours.cfg.rank == 3
    idx = torch.randint(0, 70, (2, 40))
    with torch.no_grad():
        theirs = hf(idx, use_cache=False).logits
        mine, _ = ours(idx)
    torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)


def test_state_dict_loads_and_streams_like_the_full_forward(hf_model_dir):
    _, hf = hf_model_dir
    sd = hf.state_dict()
    assert config_from_state_dict(sd).n_layer == 2
    ours = load_hf_mamba(sd)
    idx = torch.randint(0, 70, (1, 33))
    with torch.no_grad():
        theirs = hf(idx, use_cache=False).logits
        state = ours.new_state(1)
        streamed = torch.cat([ours(idx[:, a : a + 10], state=state)[0] for a in range(0, 33, 10)], 1)
    torch.testing.assert_close(streamed, theirs, rtol=1e-4, atol=1e-5)


def test_wrong_shapes_are_refused(hf_model_dir):
    _, hf = hf_model_dir
    sd = dict(hf.state_dict())
    sd["backbone.layers.0.mixer.D"] = torch.ones(5)
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_hf_mamba(sd)
