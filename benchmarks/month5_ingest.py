"""Month 5 benchmark: ingestion throughput and peak memory on a 100-page and a 1,000-page PDF.

Each run is a fresh process: write the PDF (not timed), then ingest it into a FAISS store with
all-MiniLM-L6-v2 and, side by side in the same invocation, with the hashing embedder (no model: the
reading, chunking and storing alone), so the share of the time spent embedding is a measured ratio.
Reported: pages/min, chunks/s, seconds, peak RSS of the ingesting process (VmHWM).

    OMP_NUM_THREADS=1 python benchmarks/month5_ingest.py                 # 1 torch thread
    OMP_NUM_THREADS=2 python benchmarks/month5_ingest.py --threads 2     # both cores

Writes runs/bench_month5/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path("runs/bench_month5")
CHILD = """
import json, sys, time
from pathlib import Path
import torch
torch.set_num_threads(int(sys.argv[4]))
from month5_rag.corpus import write_long_pdf
from month5_rag.embeddings import load_embedder
from month5_rag.rag import Rag, RagConfig
from shared.memory import peak_rss_bytes
pdf = write_long_pdf(Path(sys.argv[1]) / "docs" / "manual.pdf", int(sys.argv[2]))
embedder = load_embedder(sys.argv[3])
rag = Rag(RagConfig(store="faiss", store_dir=str(Path(sys.argv[1]) / "store"), progress=False), embedder=embedder)
start = time.perf_counter()
report = rag.ingest([pdf.parent])
seconds = time.perf_counter() - start
print(json.dumps({"pages": report.files[0].pages, "chunks": report.chunks, "seconds": seconds,
                  "peak_rss_mib": peak_rss_bytes() / 2**20}))
"""


def run(pages: int, model: str, threads: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="month5-ingest-") as tmp:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HYBRID_AI_THREADS": str(threads)}
        out = subprocess.run([sys.executable, "-c", CHILD, tmp, str(pages), model, str(threads)], env=env,
                             capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parent.parent)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row.update(model=model, threads=threads, pages_per_min=60 * row["pages"] / row["seconds"],
               chunks_per_s=row["chunks"] / row["seconds"])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    rows = []
    for pages in args.pages:
        for model in ("all-MiniLM-L6-v2", "hashing"):
            row = run(pages, model, args.threads)
            rows.append(row)
            print(f"{pages:>5} pages {model:<17} {row['seconds']:7.1f} s  {row['pages_per_min']:7.0f} pages/min  "
                  f"{row['chunks']:>5} chunks  {row['chunks_per_s']:6.1f} chunks/s  peak RSS "
                  f"{row['peak_rss_mib']:.0f} MiB", flush=True)
        model_row, base_row = rows[-2], rows[-1]
        print(f"      embedding share of the MiniLM run: "
              f"{1 - base_row['seconds'] / model_row['seconds']:.0%} (hashing run / MiniLM run = "
              f"{base_row['seconds'] / model_row['seconds']:.2f})", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "ingest.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {OUT / 'ingest.json'}")


if __name__ == "__main__":
    main()
