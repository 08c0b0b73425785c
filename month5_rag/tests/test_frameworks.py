"""LlamaIndex and LangChain over the same Chroma collection retrieve the same chunks as our pipeline."""

from __future__ import annotations

import pytest

from month5_rag.rag import Rag, RagConfig


class ScriptedBackend:
    """A month-2 Backend that answers from a script: the LLM side faked, everything else real."""
    name = "scripted"

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def count_tokens(self, messages):
        return sum(len(m["content"].split()) for m in messages)

    def stream(self, messages, sampling):
        self.prompts.append(messages[-1]["content"])
        yield from ["The answer ", "is in the context."]


@pytest.fixture(scope="module")
def chroma_rag(tmp_path_factory, handwritten, minilm):
    rag = Rag(RagConfig(store="chroma", store_dir=str(tmp_path_factory.mktemp("fw")), collection="hw",
                        progress=False), embedder=minilm)
    rag.ingest([handwritten.folder])
    return rag


def test_llamaindex_retrieves_our_chunks(chroma_rag, handwritten):
    from month5_rag.frameworks import llamaindex_index

    retriever = llamaindex_index(chroma_rag, "hw").as_retriever(similarity_top_k=5)
    for q in handwritten.questions[:15]:
        ours = [h.id for h in chroma_rag.search(q.question, "hw", 5, "dense")]
        theirs = [n.node.node_id for n in retriever.retrieve(q.question)]
        assert theirs == ours, q.question
        node = retriever.retrieve(q.question)[0].node
        assert node.get_content() == chroma_rag.search(q.question, "hw", 1, "dense")[0].text


def test_llamaindex_query_engine_with_our_llm(chroma_rag):
    from month5_rag.frameworks import LocalChatLLM, llamaindex_index

    backend = ScriptedBackend()
    engine = llamaindex_index(chroma_rag, "hw").as_query_engine(llm=LocalChatLLM(backend), similarity_top_k=2)
    response = engine.query("How long are invoices kept?")
    assert "answer" in str(response) and len(response.source_nodes) == 2
    assert "7 years" in backend.prompts[-1]  # the retrieved chunk reached the model's prompt


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_langchain_retriever_returns_our_chunks(chroma_rag, handwritten, mode):
    from month5_rag.frameworks import LangChainRetriever

    retriever = LangChainRetriever(rag=chroma_rag, collection="hw", k=5, mode=mode)
    for q in handwritten.questions[:10]:
        docs = retriever.invoke(q.question)
        assert [d.id for d in docs] == [h.id for h in chroma_rag.search(q.question, "hw", 5, mode)]
        assert all(d.metadata["locator"] and d.page_content for d in docs)
