"""The MoE language model through the command line: the loss falls, the per-step load log, the routing
heatmap and metrics appear, training resumes, eval compares checkpoints, BTX merges branches; a
checkpoint of another expert count is a one-line error. Tiny sizes: this is about the plumbing (the
README's figures come from the presets in month4_moe/configs/)."""

import json

import pytest
import torch

from month1_transformer.model import GPT, GPTConfig
from month4_moe.__main__ import main
from month4_moe.btx import merge_branches
from month4_moe.layer import MoEConfig, MoELayer
from month4_moe.lm import MoEGPT, dense_gpt, param_counts
from shared import checkpoint

TINY = ["--n-layer", "2", "--n-head", "2", "--n-embd", "32", "--block-size", "32", "--train-chars", "20000",
        "--eval-chars", "3000", "--eval-tokens", "512", "--batch-size", "8", "--lr", "3e-3", "--warmup-steps", "10",
        "--eval-interval", "40", "--eval-batches", "2", "--ckpt-interval", "40", "--progress", "false"]


def fails(capsys, *argv):
    with pytest.raises(SystemExit) as stop:
        main(list(argv))
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def moe_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("moe")
    main(["train", *TINY, "--max-steps", "80", "--out-dir", str(out)])
    return out


@pytest.mark.slow
def test_training_learns_and_writes_its_figures(moe_run):
    metrics = json.loads((moe_run / "metrics.json").read_text())
    history = checkpoint.load(moe_run / "ckpt.pt")["history"]
    assert history["loss"][0] > 5.0 and history["eval_val"][-1] < 3.6, history["eval_val"]  # ln 256 = 5.55
    assert len(metrics["mutual_information_bits"]) == 2 and all(0 <= b <= 2 for b in metrics["mutual_information_bits"])
    assert set(metrics["val"]) == set(metrics["other"]) == {"code", "math", "text", "chat"}
    assert metrics["params"]["active"] < metrics["params"]["total"]
    rows = [json.loads(line) for line in (moe_run / "load.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 81))
    assert sum(rows[-1]["layers"][0]["routes_per_expert"]) == 8 * 32  # top-1: one route per token
    for name in ("loss.png", "routing.png"):
        assert (moe_run / name).stat().st_size > 10_000


@pytest.mark.slow
def test_resume_eval_and_another_expert_count(moe_run, capsys, tmp_path):
    main(["train", *TINY, "--max-steps", "85", "--out-dir", str(moe_run)])
    assert "step 80/85" in capsys.readouterr().out
    line = fails(capsys, "train", *TINY, "--max-steps", "90", "--n-experts", "8", "--out-dir", str(moe_run))
    assert "holds a 4-expert top-1 MoE, but these options build a 8-expert top-1 MoE" in line
    dense = tmp_path / "dense"
    main(["train", *TINY, "--arch", "dense", "--max-steps", "5", "--eval-interval", "0", "--out-dir", str(dense)])
    capsys.readouterr()
    main(["eval", "--ckpt", f"{moe_run}/ckpt.pt,{dense}/ckpt.pt", "--eval-tokens", "256", "--eval-chars", "3000",
          "--out-dir", str(tmp_path / "eval")])
    out = capsys.readouterr().out
    assert "| model |" in out and "I(domain; expert)" in out
    results = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert results[f"{moe_run}/ckpt.pt"]["model"] == "a 4-expert top-1 MoE"
    torch.save({"model": {}, "model_config": {}, "tokenizer": {}}, tmp_path / "month1.pt")
    assert "not a month-4 language-model checkpoint" in fails(capsys, "eval", "--ckpt", str(tmp_path / "month1.pt"))


def test_moe_lm_counts_and_shares_month1_code():
    cfg = GPTConfig(vocab_size=256, n_layer=2, n_head=2, n_embd=16, block_size=16)
    model = MoEGPT(cfg, MoEConfig(n_experts=4, top_k=1))
    assert all(isinstance(b.mlp, MoELayer) for b in model.blocks) and isinstance(model, GPT)
    counts, dense = param_counts(model), param_counts(dense_gpt(cfg))
    assert counts["active"] == dense["active"] + 2 * 16 * 4  # + the routers
    assert counts["total"] - dense["total"] == 2 * (3 * (16 * 64 * 2 + 64 + 16) + 16 * 4)
    out = model.generate(torch.zeros(1, 3, dtype=torch.long), 10, generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 13) and all(b.mlp.track for b in model.blocks)


def test_btx_merge_takes_mlps_as_experts_and_averages_the_rest():
    cfg = GPTConfig(vocab_size=256, n_layer=2, n_head=2, n_embd=16, block_size=16, bias=False)
    branches = []
    for seed in range(4):
        torch.manual_seed(seed)
        branches.append(dense_gpt(cfg))
    mix = merge_branches(branches, MoEConfig(n_experts=4))
    for layer in range(2):
        bank = mix.blocks[layer].mlp.experts
        for e, branch in enumerate(branches):
            assert torch.equal(bank.w1[e], branch.blocks[layer].mlp.fc.weight.t())
            assert torch.equal(bank.w2[e], branch.blocks[layer].mlp.proj.weight.t())
    mean = torch.stack([b.blocks[1].attn.q_proj.weight for b in branches]).mean(0)
    torch.testing.assert_close(mix.blocks[1].attn.q_proj.weight, mean)
    torch.testing.assert_close(mix.tok_emb.weight, torch.stack([b.tok_emb.weight for b in branches]).mean(0))


@pytest.mark.slow
def test_btx_command_runs_every_stage(tmp_path, capsys):
    main(["btx", *[a for a in TINY if a not in ("--train-chars", "20000", "--eval-chars", "3000")],
          "--seed-steps", "6", "--branch-steps", "3", "--router-steps", "3", "--max-steps", "3",
          "--eval-interval", "0", "--out-dir", str(tmp_path)])
    summary = json.loads((tmp_path / "btx.json").read_text())
    assert summary["total_steps"] == 6 + 4 * 3 + 3 + 3
    assert set(summary["stages"]) == {"seed", "branch_code", "branch_math", "branch_text", "branch_chat",
                                      "mix_router", "mix"}
    state = checkpoint.load(tmp_path / "mix" / "ckpt.pt")
    assert state["arch"] == "moe" and state["step"] == 3
