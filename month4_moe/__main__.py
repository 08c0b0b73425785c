"""python -m month4_moe {train,eval,btx,ds-train,check,route,train-experts} --help"""

from __future__ import annotations

from shared.cli import Command, run_subcommands

COMMANDS = {
    "train": Command("month4_moe.train", "train the 4-expert MoE language model (or a dense baseline) on "
                                         "code/math/text/chat; routing heatmap, I(domain; expert)"),
    "eval": Command("month4_moe.evaluate", "per-domain loss, routing heatmap and I(domain; expert) of checkpoints"),
    "btx": Command("month4_moe.btx", "Branch-Train-MiX: a dense seed, 4 domain branches merged into one MoE"),
    "ds-train": Command("month4_moe.ds_train", "train the same model with deepspeed.moe.layer.MoE through "
                                               "deepspeed.initialize (CPU/gloo or GPUs; expert parallel ranks)"),
    "check": Command("month4_moe.check", "our MoE layer against the dense loop, Mixtral's block and DeepSpeed's MoE"),
    "route": Command("month4_moe.route", "send a request to the Code/Math/Text/Chat expert (MiniLM classifier)"),
    "train-experts": Command("month4_moe.train_experts",
                             "train the request router and a LoRA adapter per domain on SmolLM2"),
}


def main(argv: list[str] | None = None) -> None:
    run_subcommands("python -m month4_moe",
                    "Month 4: Mixture of Experts - routers, load balancing, a 4-expert model (Code / Math / Text / "
                    "Chat), DeepSpeed MoE.", COMMANDS, argv)


if __name__ == "__main__":
    main()
