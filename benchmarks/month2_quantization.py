"""Month 2 benchmark: SmolLM2 in every number format of `month2_llm_core.quantization`, side by side.

For each variant: memory of the weights, size on disk, greedy decode tokens/s with plain `generate`
(all variants loaded at once and taking turns prompt by prompt, so load changes hit them alike;
read the ratio to fp32), perplexity on a held-out text (the last 20,000 characters of the Python
docs prose), and the answers to the fixed prompts ("same" = token for token equal to fp32's).

    OMP_NUM_THREADS=1 python benchmarks/month2_quantization.py              # ~15 min on a busy 2-core box
    OMP_NUM_THREADS=1 python benchmarks/month2_quantization.py --variants fp32,fp16-fast,bnb-nf4 --prompts 2

torchao is not a project dependency; with it installed, `--variants torchao-int8` adds its row.
Writes the table as JSON to --out (default runs/bench_month2/quantization.json).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from month2_llm_core.quantization import QuantConfig, format_table, quantization_table
from shared.config import add_config_arguments, config_from_args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, QuantConfig)
    parser.set_defaults(out="runs/bench_month2/quantization.json")
    cfg = config_from_args(QuantConfig, parser.parse_args())
    results = quantization_table(cfg)
    print()
    print(format_table(results))
    Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
    Path(cfg.out).write_text(json.dumps({"config": asdict(cfg), "results": [asdict(r) for r in results]}, indent=1))
    print(f"[quantize] wrote {cfg.out}")


if __name__ == "__main__":
    main()
