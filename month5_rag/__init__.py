"""Month 5: retrieval and RAG - chat with internal PDF and Word documents."""
import shared  # noqa: F401,E402  (first: it quiets known third-party import messages; see shared/__init__.py)
