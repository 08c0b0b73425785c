"""python -m month2_llm_core {chat,tokenizers,quantize,inspect,finetune,eval-toolcalls} --help"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, add-arguments function, main function, one-line help). Modules are imported
# only when their command runs, so --help is instant and works before every module exists.
COMMANDS = {
    "chat": ("month2_llm_core.chat", "add_arguments", "main",
             "chat with SmolLM2 (transformers fast path, llama.cpp, or an OpenAI-compatible server)"),
    "tokenizers": ("month2_llm_core.tokenization", "add_arguments", "main",
                   "train a BPE with HF tokenizers; compare with month 1's BPE and SmolLM2's tokenizer"),
    "quantize": ("month2_llm_core.quantization", "add_arguments", "main",
                 "fp32 / bf16 / int8 / fp16-fast / bitsandbytes 8-bit and NF4: size, speed, perplexity, answers"),
    "inspect": ("month2_llm_core.hub", "add_arguments", "main",
                "config, parameter count and memory of a model; optionally save + reload it with a model card"),
    "finetune": ("month2_llm_core.finetune", "add_arguments", "main",
                 "LoRA / QLoRA fine-tuning on the tool-call task"),
    "eval-toolcalls": ("month2_llm_core.finetune", "add_eval_arguments", "eval_main",
                       "held-out exact match of tool calls, base model vs adapter"),
}


def run_command(name: str, argv: list[str]) -> None:
    module_name, add_arguments, main, help_text = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise  # the module exists but one of its own imports is missing: show that
        raise SystemExit(f"python -m month2_llm_core {name}: {module_name} is not available in this checkout "
                         "yet (it is being written separately); see month2_llm_core/README.md") from err
    parser = argparse.ArgumentParser(prog=f"python -m month2_llm_core {name}", description=module.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    getattr(module, add_arguments)(parser)
    getattr(module, main)(parser.parse_args(argv))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m month2_llm_core",
        description="Month 2: LLM core - the Hugging Face ecosystem, LoRA/QLoRA, quantization, a fast local "
                    "chatbot. `python -m month2_llm_core COMMAND --help` shows a command's options.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (*_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)  # its own parser handles --help
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    run_command(args.command, rest)


if __name__ == "__main__":
    main()
