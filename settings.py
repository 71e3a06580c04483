"""Settings shared by the generator, the collector and the dashboard.

Two things live here and nowhere else: the environment variables that name the
spool, image and warehouse paths (with their defaults), and the one builder that
turns a settings dataclass into command-line flags. A setting is a dataclass
field whose help is `metadata["help"]` (see `setting`); its flag, its type and its
default come from the field itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing

# Environment variable -> default path.
SPOOL_DIR, OUTPUT_DIR, WAREHOUSE_DB = "SPOOL_DIR", "OUTPUT_DIR", "WAREHOUSE_DB"
DEFAULTS = {SPOOL_DIR: "data/spool", OUTPUT_DIR: "data/images", WAREHOUSE_DB: "data/warehouse.duckdb"}


def path(env: str) -> str:
    """The path an environment variable names, else its default."""
    return os.environ.get(env) or DEFAULTS[env]


def setting(help: str, default=dataclasses.MISSING, *, env: str | None = None, flag: str | None = None):
    """A settings field: its help text, and a default (or, with `env`, the path that variable names);
    `flag` names its command-line flag when that is not --field-name."""
    meta = {"help": help if env is None else f"{help} (env {env})", **({"flag": flag} if flag else {})}
    if env is not None:
        return dataclasses.field(default_factory=lambda: path(env), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def flag_of(f: dataclasses.Field) -> str:
    """The command-line flag of a settings field."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _split(text: str, item_type: type) -> tuple:
    try:
        return tuple(item_type(part.strip()) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated {_KIND[item_type]}, got {text!r}") from None


_KIND = {int: "whole numbers", float: "numbers", str: "words"}


def _parser_for(name: str, hint) -> tuple[typing.Callable | None, bool]:
    """(how to read the flag's text, whether it is an on/off switch) for a field's type hint."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None: read as X
        hint = args[0]
        args = list(typing.get_args(hint))
    if hint is bool:
        return None, True
    if typing.get_origin(hint) is tuple:
        item = args[0]
        return (lambda text: _split(text, item)), False
    if hint in (int, float, str):
        return hint, False  # argparse names the flag and the bad value
    raise TypeError(f"setting {name!r} has a type the flag builder does not read: {hint!r}")


def add_flags(parser: argparse.ArgumentParser, cls, only: tuple[str, ...] | None = None) -> None:
    """One flag per field of the settings dataclass `cls` (or of the fields named in `only`): --field-name,
    typed from its hint, with its help."""
    hints = typing.get_type_hints(cls)
    defaults = cls()
    for f in dataclasses.fields(cls):
        if only is not None and f.name not in only:
            continue
        default = getattr(defaults, f.name)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        # argparse formats help with %, so a literal percent sign must be doubled.
        text = f"{f.metadata['help']} (default: {shown})".replace("%", "%%")
        read, switch = _parser_for(f.name, hints[f.name])
        if switch:
            parser.add_argument(flag_of(f), dest=f.name, action="store_const", const=True, default=None,
                                help=text)
        else:
            parser.add_argument(flag_of(f), dest=f.name, type=read, default=None, help=text)


def given_flags(args: argparse.Namespace, cls) -> dict:
    """The fields of `cls` the flags set (a flag not given reads None, and is left out)."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if getattr(args, f.name, None) is not None}


def from_flags(args: argparse.Namespace, cls):
    """The settings the flags name, defaults for the rest; ValueError (from the dataclass) on a bad value."""
    return cls(**given_flags(args, cls))
