"""Month 2: LLM core - the Hugging Face ecosystem, LoRA/QLoRA, quantization, a local chatbot."""
