"""Range checks for month 3's configs. They raise ValueError naming the field, which
`shared.config.config_from_args` turns into one line for the command-line user."""

from __future__ import annotations


def require_at_least(config: object, minimum: int, *names: str) -> None:
    """ValueError listing every field of `config` among `names` that is below `minimum`."""
    low = [f"{name} must be at least {minimum}, got {getattr(config, name)}"
           for name in names if getattr(config, name) < minimum]
    if low:
        raise ValueError("; ".join(low))
