"""The embedding model for GPU serving with Triton: exported to ONNX (mean pooling and L2 normalisation
inside the graph, so the output is month 5's embedding), in a Triton model-repository layout.

    path = export_embedding_model(Path("runs/month6/triton"))   # runs/month6/triton/all-minilm-l6-v2/1/model.onnx
    OnnxEmbedder(path).embed(["The cafeteria opens at 8 am."])   # == Embedder().embed_passages(...), 1e-6

Checked here on CPU with onnxruntime against sentence-transformers (`pytest month6_system/tests/test_onnx.py`,
speed in benchmarks/month6_onnx.py). On a GPU box: `tritonserver --model-repository runs/month6/triton`
(the config asks for the onnxruntime backend with dynamic batching; add `optimization { execution_accelerators
{ gpu_execution_accelerator: [{name: "tensorrt"}] } }` for TensorRT). Not run here: no GPU, no Triton image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from shared.models import MINILM, embedding_model_path

CONFIG = """name: "{name}"
platform: "onnxruntime_onnx"
max_batch_size: {max_batch}
input [
  {{ name: "input_ids", data_type: TYPE_INT64, dims: [ -1 ] }},
  {{ name: "attention_mask", data_type: TYPE_INT64, dims: [ -1 ] }}
]
output [
  {{ name: "embedding", data_type: TYPE_FP32, dims: [ {dim} ] }}
]
dynamic_batching {{ max_queue_delay_microseconds: 2000 }}
instance_group [ {{ kind: KIND_GPU, count: 1 }} ]
"""


class _Pooled(torch.nn.Module):
    """sentence-transformers' MiniLM pipeline as one module: encoder, mean over real tokens, L2 norm."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(mean, p=2, dim=1)


def export_embedding_model(repository: Path, name: str = MINILM, max_batch: int = 64) -> Path:
    """Write `repository/<name>/1/model.onnx` and its `config.pbtxt`; returns the model file."""
    from transformers import AutoModel, AutoTokenizer

    source = embedding_model_path(name)
    tokenizer = AutoTokenizer.from_pretrained(source)
    encoder = AutoModel.from_pretrained(source).eval()
    folder = repository / name.lower()
    (folder / "1").mkdir(parents=True, exist_ok=True)
    example = tokenizer(["an example", "a longer example sentence"], padding=True, return_tensors="pt")
    model_file = folder / "1" / "model.onnx"
    axes = {0: "batch", 1: "sequence"}
    # The TorchScript exporter (dynamo=False): tried first and its graph matches the model to ~1e-7 (the test).
    torch.onnx.export(_Pooled(encoder), (example["input_ids"], example["attention_mask"]), str(model_file),
                      dynamo=False, opset_version=17, input_names=["input_ids", "attention_mask"],
                      output_names=["embedding"],
                      dynamic_axes={"input_ids": axes, "attention_mask": axes, "embedding": {0: "batch"}})
    (folder / "config.pbtxt").write_text(CONFIG.format(name=name.lower(), max_batch=max_batch,
                                                       dim=encoder.config.hidden_size))
    tokenizer.save_pretrained(folder / "tokenizer")  # what a client needs to make the inputs
    return model_file


class OnnxEmbedder:
    """The exported model through onnxruntime on CPU: normalised embeddings, like month 5's `Embedder`."""

    def __init__(self, model_file: Path, max_length: int = 256, threads: int = 1) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self.tokenizer = AutoTokenizer.from_pretrained(Path(model_file).parents[1] / "tokenizer")
        self.max_length = max_length  # sentence-transformers' max_seq_length for MiniLM

    def embed(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="np")
        feeds = {name: enc[name].astype(np.int64) for name in ("input_ids", "attention_mask")}
        return self.session.run(None, feeds)[0]
