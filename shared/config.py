"""Dataclass configs overridable from a preset file and from the command line.

Every field of a config dataclass becomes a `--field-name` option with its type and
default, so `python -m month1_transformer train --n-layer 6 --lr 3e-4` just works.
`--config FILE.toml` (or the name of a preset in the month's `configs/` folder) sets
fields from a flat TOML table, `field_name = value`; options on the command line
override the file. Booleans are written one way everywhere: `--flag true|false`.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import tomllib

from shared.errors import UserError

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
    already options (a base config added before): only the fields `cls` adds become new ones.
    A field with metadata `derived=True` (set by the program, e.g. a vocabulary size taken from
    the tokenizer) is no option at all."""
    hints = typing.get_type_hints(cls)
    skip = {f.name for f in dataclasses.fields(exclude)} if exclude is not None else set()
    for field in dataclasses.fields(cls):
        if field.name in skip or field.metadata.get("derived"):
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
    """A `cls` from the parsed options; a value the config itself rejects is a user error."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    try:
        return cls(**values)
    except ValueError as err:
        raise UserError(str(err)) from None


def add_config_file_argument(parser: argparse.ArgumentParser, presets: Path | None = None) -> None:
    """`--config FILE`; its help names the presets in `presets` that fit this parser's options."""
    dests = {a.dest for a in parser._actions}
    files = sorted(presets.glob("*.toml")) if presets and presets.is_dir() else []
    names = [p.stem for p in files if _fits(p, dests)]
    listed = f"; presets: {', '.join(names)}" if names else ""
    parser.add_argument("--config", metavar="FILE", default=None,
                        help=f"TOML file of option values (flags given here override it){listed}")


def _fits(preset: Path, dests: set[str]) -> bool:
    try:
        return set(read_config_file(str(preset))) <= dests
    except UserError:  # a broken preset is reported when it is used, not in every --help
        return False


def _preset_path(name: str, presets: Path | None) -> Path:
    path = Path(name)
    if not path.exists() and presets is not None and (presets / f"{name}.toml").is_file():
        return presets / f"{name}.toml"
    if not path.is_file():
        known = f" or a preset in {presets}" if presets is not None else ""
        raise UserError(f"--config {name}: no such file{known}")
    return path


def read_config_file(name: str, presets: Path | None = None) -> dict[str, Any]:
    """The flat `field = value` table of a TOML preset, keys normalised to field names."""
    path = _preset_path(name, presets)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"--config {path}: not valid TOML ({err})") from None
    nested = [k for k, v in table.items() if isinstance(v, dict)]
    if nested:
        raise UserError(f"--config {path}: expected flat `name = value` lines, found table(s) {nested}")
    return {k.replace("-", "_"): v for k, v in table.items()}


def parse_args(parser: argparse.ArgumentParser, argv: list[str], presets: Path | None = None) -> argparse.Namespace:
    """Parse `argv`; values from `--config FILE` become the defaults that explicit flags override."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, _ = pre.parse_known_args(argv)
    if known.config:
        values = read_config_file(known.config, presets)
        actions = {a.dest: a for a in parser._actions}
        unknown = sorted(set(values) - set(actions))
        if unknown:
            parser.error(f"--config {known.config}: unknown option(s) {unknown}")
        for key, value in values.items():
            action = actions[key]
            if action.type is not None and isinstance(value, str):
                value = action.type(value)
            if action.choices is not None and value not in action.choices:
                parser.error(f"--config {known.config}: {key} = {value!r} is not one of {list(action.choices)}")
            values[key] = value
        parser.set_defaults(**values)
    return parser.parse_args(argv)


def parse_config(cls: type[T], argv: list[str] | None = None, description: str | None = None) -> T:
    """Build a `cls` from command-line options (all optional, defaults from the dataclass)."""
    parser = argparse.ArgumentParser(description=description or cls.__doc__)
    add_config_arguments(parser, cls)
    return config_from_args(cls, parser.parse_args(argv))
