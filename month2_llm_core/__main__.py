"""python -m month2_llm_core {chat,tokenizers,quantize,inspect,finetune,eval-toolcalls} --help"""

from __future__ import annotations

from shared.cli import Command, run_subcommands

COMMANDS = {
    "chat": Command("month2_llm_core.chat",
                    "chat with SmolLM2 (transformers fast path, llama.cpp, or an OpenAI-compatible server)"),
    "tokenizers": Command("month2_llm_core.tokenization",
                          "train a BPE with HF tokenizers; compare with month 1's BPE and SmolLM2's tokenizer"),
    "quantize": Command("month2_llm_core.quantization",
                        "fp32 / bf16 / int8 / fp16-fast / bitsandbytes 8-bit and NF4: size, speed, perplexity"),
    "inspect": Command("month2_llm_core.hub",
                       "config, parameter count and memory of a model; optionally save + reload it with a card"),
    "finetune": Command("month2_llm_core.finetune", "LoRA / QLoRA fine-tuning on the tool-call task"),
    "eval-toolcalls": Command("month2_llm_core.toolcall_eval",
                              "held-out exact match of tool calls, base model vs adapter"),
}


def main(argv: list[str] | None = None) -> None:
    run_subcommands("python -m month2_llm_core",
                    "Month 2: LLM core - the Hugging Face ecosystem, LoRA/QLoRA, quantization, a fast local chatbot.",
                    COMMANDS, argv)


if __name__ == "__main__":
    main()
