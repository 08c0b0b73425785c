"""Dataclass configs overridable from the command line.

Every field of a config dataclass becomes a `--field-name` option with its type and
default, so `python -m month1_transformer train --n-layer 6 --lr 3e-4` just works.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def _field_type(tp: Any) -> Any:
    """Unwrap Optional[X] / X | None to X."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {text!r}")


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, defaults: dict[str, Any] | None = None,
                         exclude: type | None = None) -> None:
    """Add one option per dataclass field; help text comes from field metadata['help'].
    `defaults` overrides some fields' defaults (a command's own settings for a shared config),
    both as the value used and as the one --help shows. `exclude`: a dataclass whose fields are
    already options (a base config added before): only the fields `cls` adds become new ones."""
    hints = typing.get_type_hints(cls)
    skip = {f.name for f in dataclasses.fields(exclude)} if exclude is not None else set()
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        tp = _field_type(hints[field.name])
        default = field.default if field.default is not dataclasses.MISSING else None
        if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = field.default_factory()  # type: ignore[misc]
        default = (defaults or {}).get(field.name, default)
        kwargs: dict[str, Any] = {"default": default, "dest": field.name}
        help_text = field.metadata.get("help", "")
        kwargs["help"] = f"{help_text} (default: {default})".strip()
        if tp is bool:
            kwargs["type"] = _parse_bool
            kwargs["metavar"] = "BOOL"
        elif tp in (int, float, str):
            kwargs["type"] = tp
        if "choices" in field.metadata:
            kwargs["choices"] = field.metadata["choices"]
        parser.add_argument("--" + field.name.replace("_", "-"), **kwargs)


def config_from_args(cls: type[T], args: argparse.Namespace) -> T:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    return cls(**values)


def parse_config(cls: type[T], argv: list[str] | None = None, description: str | None = None) -> T:
    """Build a `cls` from command-line options (all optional, defaults from the dataclass)."""
    parser = argparse.ArgumentParser(description=description or cls.__doc__)
    add_config_arguments(parser, cls)
    return config_from_args(cls, parser.parse_args(argv))
