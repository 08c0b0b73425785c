"""Answers written by an OpenAI-compatible server (vLLM on a GPU box, llama.cpp's server), not in-process.

    generator = UpstreamGenerator("http://gpu-box:8000/v1")      # Settings.upstream_url
    for piece in generator.stream("math", messages, Sampling()):  # the expert's answer, streamed
        ...

The assistant keeps its router, tool-call decisions, tools, retrieval and transcript in-process; only the
answer (the longest stage) goes upstream. An expert's answer asks for the model named after the expert when
the server lists one: vLLM serves month 4's adapters that way,

    vllm serve HuggingFaceTB/SmolLM2-135M-Instruct --enable-lora --max-lora-rank 8 \\
        --lora-modules code=month4_moe/adapters/code math=month4_moe/adapters/math \\
                       text=month4_moe/adapters/text chat=month4_moe/adapters/chat

and every other answer (the general one, or an expert the server lacks) asks for `model` (default: the first
model it lists, vLLM's base model). The server batches concurrent requests itself (continuous batching), so
the in-process batcher is not used for answers.
"""

from __future__ import annotations

from collections.abc import Iterator

from month2_llm_core.chat import Message, OpenAIBackend, Sampling


class UpstreamGenerator:
    def __init__(self, base_url: str, model: str = "", api_key: str = "", timeout_s: float = 120.0) -> None:
        listing = OpenAIBackend(base_url, model="listing", api_key=api_key, timeout=timeout_s)
        self.served = listing.models()  # fails here, at load, when the server is down: /readyz reports it
        if not self.served:
            raise RuntimeError(f"{base_url}/models lists no model")
        if model and model not in self.served:
            raise RuntimeError(f"{base_url} does not serve {model!r}; it lists {', '.join(self.served)}")
        self.model = model or self.served[0]
        self._backends = {name: OpenAIBackend(base_url, name, api_key, timeout_s) for name in self.served}
        self.name = f"openai:{self.model}@{listing.base_url}"

    def model_for(self, expert: str) -> str:
        """The model that writes `expert`'s answer: the expert's own when the server lists it."""
        return expert if expert in self._backends else self.model

    def stream(self, expert: str, messages: list[Message], sampling: Sampling) -> Iterator[str]:
        return self._backends[self.model_for(expert)].stream(messages, sampling)
