"""Month 6: the Enterprise Hybrid Assistant."""
import shared  # noqa: F401,E402  (first: it quiets known third-party import messages; see shared/__init__.py)
