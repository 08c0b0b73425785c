"""DeepSpeed MoE on CPU with real processes: 2 local ranks at expert-parallel size 2 (torch.distributed.run
on 127.0.0.1, a free port, gloo, one thread per rank) train exactly like 1 rank accumulating the same two
micro-batches; a checkpoint saved at ep=2 loads at ep=1 and back with every expert bit-equal under its
own global number (never another rank's experts)."""

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from shared.testing import REPO_ROOT

pytest.importorskip("deepspeed")

COMMON = ["--max-steps", "3", "--micro-batch", "4", "--train-chars", "20000", "--progress", "false", "--dump", "true"]


def ds_train(out, *argv):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HYBRID_AI_THREADS": "1", "DS_ACCELERATOR": "cpu"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "month4_moe", "ds-train", "--out-dir", str(out), *COMMON, *argv],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "built successfully" not in proc.stdout + proc.stderr  # no op was JIT-compiled
    return time.perf_counter() - start


def weights(out):
    merged = {}
    for path in sorted(out.glob("weights_rank*.pt")):
        for k, v in torch.load(path, weights_only=True).items():
            assert k not in merged or torch.equal(merged[k], v), k  # dense weights equal on every rank
            merged[k] = v
    return merged


@pytest.mark.slow
def test_expert_parallel_ranks_and_checkpoints_across_ep_sizes(tmp_path):
    a, b, c, d = (tmp_path / n for n in ("ep2", "ep1", "ep2_to_ep1", "ep1_to_ep2"))
    with ThreadPoolExecutor(2) as pool:  # independent runs side by side
        ep2 = pool.submit(ds_train, a, "--ranks", "2", "--ep-size", "2")
        ep1 = pool.submit(ds_train, b, "--ranks", "1", "--ep-size", "1", "--grad-accum", "2")
        seconds = ep2.result(), ep1.result()
    print(f"2 ranks: {seconds[0]:.1f} s, 1 rank: {seconds[1]:.1f} s (wall, processes included)")
    run2, run1 = (json.loads((p / "losses.json").read_text()) for p in (a, b))
    assert run2["ranks"] == 2 and run1["ranks"] == 1
    torch.testing.assert_close(torch.tensor(run2["losses"]), torch.tensor(run1["losses"]), rtol=1e-6, atol=0)
    assert run2["losses"][-1] < run2["losses"][0]
    w2, w1 = weights(a), weights(b)
    assert set(w2) == set(w1) and sum(".mlp.experts." in k for k in w2) == 2 * 4 * 2  # 2 layers x 4 experts x fc, proj
    for k in w2:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-5, atol=1e-6, msg=k)

    # ep=2 -> ep=1: every expert bit-equal, under its own global number; then ep=1 -> ep=2.
    ds_train(c, "--ranks", "1", "--load", str(a / "ds_ckpt"), "--max-steps", "0")
    assert {k: v for k, v in weights(c).items()}.keys() == w2.keys()
    for k, v in weights(c).items():
        assert torch.equal(v, w2[k]), k
    ds_train(d, "--ranks", "2", "--ep-size", "2", "--load", str(c / "ds_ckpt"), "--max-steps", "0")
    for k, v in weights(d).items():
        assert torch.equal(v, w2[k]), k
    experts = [w2[f"blocks.0.mlp.experts.{e}.fc.weight"] for e in range(4)]
    assert all(not torch.equal(experts[i], experts[j]) for i in range(4) for j in range(i))  # a swap would show


def test_checkpoint_of_another_expert_count_is_a_clear_error(tmp_path):
    folder = tmp_path / "ds_ckpt"
    folder.mkdir()
    (folder / "month4.json").write_text(json.dumps({"model_config": {}, "moe_config": {"n_experts": 8}}))
    from month4_moe.__main__ import main

    with pytest.raises(SystemExit) as stop:
        main(["ds-train", "--load", str(folder), "--out-dir", str(tmp_path)])
    assert stop.value.code == 2
