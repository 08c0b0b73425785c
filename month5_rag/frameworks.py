"""The same pipeline through LlamaIndex and LangChain, over the same Chroma collection.

- `llamaindex_index(rag, collection)`: a LlamaIndex `VectorStoreIndex` over the Chroma collection our
  ingestion wrote (`ChromaVectorStore`), with our embedding model (`OurEmbedding`, the same query
  prefixes) and month 2's chat model as a `CustomLLM` (`LocalChatLLM`); `as_retriever()` returns the
  chunks our dense retriever returns, and `as_query_engine(llm=...)` answers from them.
- `LangChainRetriever`: a LangChain `BaseRetriever` over `Rag.search` (dense, BM25 or hybrid), giving
  `Document`s with the locator in their metadata.

Nothing here downloads: LlamaIndex gets our embedding model and LLM explicitly (without an LLM it
would reach for OpenAI's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from llama_index.core.base.llms.types import CompletionResponse, CompletionResponseGen, LLMMetadata
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from pydantic import ConfigDict, PrivateAttr


class OurEmbedding(BaseEmbedding):
    """month5_rag's embedder (passages and queries prefixed by its family's rules) for LlamaIndex."""

    _embedder: Any = PrivateAttr()

    def __init__(self, embedder, **kwargs: Any) -> None:
        super().__init__(model_name=embedder.name, **kwargs)
        self._embedder = embedder

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.embed_queries([query])[0].tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder.embed_passages([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed_passages(texts).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


class LocalChatLLM(CustomLLM):
    """A month-2 `Backend` (SmolLM2 on the fast decoder by default) as a LlamaIndex LLM."""

    max_new_tokens: int = 64
    context_window: int = 2048
    _backend: Any = PrivateAttr()

    def __init__(self, backend, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._backend = backend

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=self.context_window, num_output=self.max_new_tokens,
                           model_name=self._backend.name)

    def _pieces(self, prompt: str):
        from month2_llm_core.chat import Sampling

        return self._backend.stream([{"role": "user", "content": prompt}], Sampling(self.max_new_tokens, 0.0))

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text="".join(self._pieces(prompt)).strip())

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        text = ""
        for piece in self._pieces(prompt):
            text += piece
            yield CompletionResponse(text=text, delta=piece)


def llamaindex_index(rag, collection: str):
    """A `VectorStoreIndex` over the Chroma collection that `rag` ingested into (store 'chroma' or 'chroma-http')."""
    from llama_index.core import VectorStoreIndex
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from month5_rag.stores import ChromaStore

    if not isinstance(rag.store, ChromaStore):
        raise ValueError("the LlamaIndex path reads the Chroma collection: use --store chroma or chroma-http")
    vector_store = ChromaVectorStore(chroma_collection=rag.store._col(collection))
    return VectorStoreIndex.from_vector_store(vector_store, embed_model=OurEmbedding(rag.embedder(collection)))


class LangChainRetriever(BaseRetriever):
    """`Rag.search` as a LangChain retriever: `invoke(question)` -> [Document] best first."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    rag: Any
    collection: str
    k: int = 5
    mode: str = "dense"
    files: Sequence[str] | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = self.rag.search(query, self.collection, self.k, self.mode, list(self.files) if self.files else None)
        return [Document(page_content=h.text, id=h.id,
                         metadata={"id": h.id, "score": h.score, "locator": h.locator, "file": h.file,
                                   "page": h.page, "heading": h.heading, "paragraph": h.paragraph,
                                   "start": h.start, "end": h.end}) for h in hits]
