"""Month 6 benchmark: the embedding model exported to ONNX (month6_system/onnx_export.py, the Triton repository)
against month 5's sentence-transformers embedder on this CPU, same texts, same threads: the largest difference
of the embeddings and the throughput ratio.

    python benchmarks/month6_onnx.py                      # 1 thread each, 256 chunks of ~60 words, batches of 32
    python benchmarks/month6_onnx.py --threads 2 --texts 512
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from month3_mamba.prose import filler  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repository", type=Path, default=None, help="where to export (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_month6" / "onnx.json")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from month5_rag.embeddings import Embedder
    from month6_system.onnx_export import OnnxEmbedder, export_embedding_model

    text = filler(random.Random(0), args.texts * 400)
    texts = [text[i * 400:(i + 1) * 400] for i in range(args.texts)]
    model_file = export_embedding_model(args.repository or Path(tempfile.mkdtemp(prefix="triton-")))
    torch_embedder, onnx_embedder = Embedder(batch_size=args.batch), OnnxEmbedder(model_file, threads=args.threads)
    torch_embedder.embed_passages(texts[: args.batch])  # warm-up both
    onnx_embedder.embed(texts[: args.batch])

    start = time.perf_counter()
    reference = torch_embedder.embed_passages(texts)
    torch_s = time.perf_counter() - start
    start = time.perf_counter()
    ours = np.concatenate([onnx_embedder.embed(texts[i:i + args.batch]) for i in range(0, len(texts), args.batch)])
    onnx_s = time.perf_counter() - start
    row = {"texts": len(texts), "batch": args.batch, "threads": args.threads,
           "max_abs_diff": float(np.abs(ours - reference).max()), "torch_texts_per_s": round(len(texts) / torch_s, 1),
           "onnx_texts_per_s": round(len(texts) / onnx_s, 1), "onnx_over_torch": round(torch_s / onnx_s, 2)}
    print(f"{len(texts)} texts, batches of {args.batch}, {args.threads} thread(s): sentence-transformers "
          f"{row['torch_texts_per_s']} texts/s, onnxruntime {row['onnx_texts_per_s']} texts/s "
          f"({row['onnx_over_torch']}x); largest difference {row['max_abs_diff']:.1e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(row, indent=1) + "\n")
    print(args.out)


if __name__ == "__main__":
    main()
