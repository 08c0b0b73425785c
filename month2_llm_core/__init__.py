"""Month 2: LLM core - the Hugging Face ecosystem, LoRA/QLoRA, quantization, a local chatbot."""
import shared  # noqa: F401,E402  (first: it quiets known third-party import messages; see shared/__init__.py)
