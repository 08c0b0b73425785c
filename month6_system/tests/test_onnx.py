"""The embedding model exported to ONNX for Triton: onnxruntime's embeddings equal month 5's (sentence-
transformers) within 1e-5, for short, long (truncated) and mixed-length batches; the repository layout and
config are what Triton reads."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

TEXTS = ["The cafeteria opens at 8 am on weekdays.", "x", "Expense claims must be submitted within 30 days. " * 40,
         "Über Straßen, café, 東京 — punctuation!"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from month6_system.onnx_export import export_embedding_model

    return export_embedding_model(tmp_path_factory.mktemp("triton"))


def test_onnx_embeddings_equal_month_5s(exported):
    from month5_rag.embeddings import Embedder
    from month6_system.onnx_export import OnnxEmbedder

    reference = Embedder().embed_passages(TEXTS)
    ours = OnnxEmbedder(exported).embed(TEXTS)
    assert ours.shape == reference.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(ours, reference, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_the_repository_is_laid_out_for_triton(exported):
    import onnx

    folder = exported.parents[1]
    assert exported.name == "model.onnx" and exported.parent.name == "1"
    config = (folder / "config.pbtxt").read_text()
    assert f'name: "{folder.name}"' in config and 'platform: "onnxruntime_onnx"' in config and "dims: [ 384 ]" in config
    graph = onnx.load(str(exported)).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask"] and graph.output[0].name == "embedding"
    onnx.checker.check_model(str(exported))
