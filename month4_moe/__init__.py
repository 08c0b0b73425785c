"""Month 4: Mixture of Experts - four specialists (Code / Math / Text / Chat)."""
import shared  # noqa: F401,E402  (first: it quiets known third-party import messages; see shared/__init__.py)
