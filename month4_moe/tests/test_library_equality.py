"""Our layer against the libraries, on the same weights: transformers' Mixtral sparse-MoE block
(top-2, dropless, SwiGLU experts) and DeepSpeed's `deepspeed.moe.layer.MoE` (top-1 and top-2, with
random token selection and second-expert sampling off), forward and aux loss, with explicit tolerances.

DeepSpeed's top-1 with use_rts=False chooses which over-capacity tokens to keep with torch.topk over a
0/1 mask, and topk's order among ties is unspecified (on CPU neither first- nor last-come), so top-1 is
compared where nothing is dropped; its top-2 keeps routes by position (first choices first, tokens in
order), as ours does, and is compared with dropping too."""

import pytest
import torch

from month4_moe.gating import switch_load_balancing_loss
from month4_moe.layer import MoEConfig, MoELayer

# float32, different summation orders (index_add / einsum vs a per-expert loop)
TOL = {"rtol": 1e-5, "atol": 1e-6}


def livelier(layer: MoELayer) -> MoELayer:
    with torch.no_grad():
        layer.router.weight.weight.normal_(std=0.5)
        if layer.experts.b1 is not None:
            layer.experts.b1.normal_(std=0.1)
            layer.experts.b2.normal_(std=0.1)
    return layer


def test_equal_to_transformers_mixtral_block():
    from transformers import MixtralConfig
    from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock

    cfg = MixtralConfig(hidden_size=16, intermediate_size=24, num_local_experts=4, num_experts_per_tok=2)
    torch.manual_seed(0)
    block = MixtralSparseMoeBlock(cfg).eval()
    with torch.no_grad():  # a standalone block's weights are uninitialised in transformers 5
        for p in block.parameters():
            p.normal_(std=0.3)
    ours = MoELayer(16, MoEConfig(top_k=2, dropless=True, expert_act="swiglu", expert_hidden=24)).eval()
    h = 24
    with torch.no_grad():
        ours.router.weight.weight.copy_(block.gate.weight)
        ours.experts.w1.copy_(block.experts.gate_up_proj[:, :h].transpose(1, 2))
        ours.experts.w3.copy_(block.experts.gate_up_proj[:, h:].transpose(1, 2))
        ours.experts.w2.copy_(block.experts.down_proj.transpose(1, 2))
    x = torch.randn(3, 11, 16)
    for dispatch in ("sort", "einsum"):
        ours.cfg.dispatch = dispatch
        torch.testing.assert_close(ours(x), block(x), **TOL)


@pytest.fixture(scope="module")
def ds_moe():
    from month4_moe.ds_moe import import_deepspeed

    pytest.importorskip("deepspeed")
    import_deepspeed()
    from deepspeed.moe.layer import MoE

    return MoE


@pytest.mark.parametrize("k, capacity_factor, dropless", [
    (1, 4.0, False), (1, 1.0, True), (2, 0.5, False), (2, 1.0, False), (2, 1.0, True)])
@pytest.mark.parametrize("dispatch", ["sort", "einsum"])
def test_equal_to_deepspeed_moe(ds_moe, k, capacity_factor, dropless, dispatch):
    from month4_moe.ds_moe import copy_into_deepspeed
    from month4_moe.layer import ExpertMLP

    torch.manual_seed(0)
    cfg = MoEConfig(top_k=k, capacity_factor=capacity_factor, eval_capacity_factor=capacity_factor * 2,
                    min_capacity=0, dropless=dropless, dispatch=dispatch)
    ours = livelier(MoELayer(16, cfg))
    theirs = ds_moe(16, ExpertMLP(16, 64), num_experts=4, k=k, capacity_factor=capacity_factor,
                    eval_capacity_factor=capacity_factor * 2, min_capacity=0, drop_tokens=not dropless,
                    use_rts=False, top2_2nd_expert_sampling=False)
    copy_into_deepspeed(ours, theirs)
    x = torch.randn(4, 25, 16)
    for train in (True, False):
        ours.train(train)
        theirs.train(train)
        y_theirs, l_aux, counts = theirs(x)
        y_ours = ours(x)
        torch.testing.assert_close(y_ours, y_theirs, **TOL)
        assert ours.stats.routes_per_expert == counts.tolist()
        # DeepSpeed's l_aux is the Switch loss of the first choices (for top-2 too).
        probs = torch.softmax(x.reshape(-1, 16) @ ours.router.weight.weight.t(), -1)
        first = probs.argmax(-1, keepdim=True)
        torch.testing.assert_close(switch_load_balancing_loss(probs, first), l_aux, **TOL)
        if k == 1:
            torch.testing.assert_close(ours.aux_loss - cfg.z_loss_coef * torch.logsumexp(
                x.reshape(-1, 16) @ ours.router.weight.weight.t(), -1).square().mean(), cfg.aux_loss_coef * l_aux,
                **TOL)
        if train and k == 2 and capacity_factor < 1:
            assert ours.stats.dropped_share > 0.1  # the comparison covered dropping


def test_deepspeed_moe_mlp_reports_our_load_metrics(ds_moe):
    from month4_moe.ds_moe import DeepSpeedMoEMLP, copy_into_deepspeed

    cfg = MoEConfig(top_k=2, capacity_factor=0.5, z_loss_coef=0.0, min_capacity=0)
    ours, theirs = livelier(MoELayer(16, cfg)), DeepSpeedMoEMLP(16, cfg)
    copy_into_deepspeed(ours, theirs)
    x = torch.randn(60, 16)
    torch.testing.assert_close(theirs(x), ours(x), **TOL)
    assert theirs.stats.routes_per_expert == ours.stats.routes_per_expert
    assert theirs.stats.kept_per_expert == ours.stats.kept_per_expert
    with pytest.raises(ValueError, match="no aux_free"):
        DeepSpeedMoEMLP(16, MoEConfig(aux_free=True, z_loss_coef=0))


def test_check_command_reports_every_comparison_within_tolerance(capsys):
    from month4_moe.__main__ import main

    main(["check", "--tokens", "64", "--d-model", "16"])
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(table) == 2 + 4 + 2 + 4 and all(line.endswith("| yes |") for line in table[2:])
