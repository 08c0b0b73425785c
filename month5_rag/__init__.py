"""Month 5: retrieval and RAG - chat with internal PDF and Word documents."""
