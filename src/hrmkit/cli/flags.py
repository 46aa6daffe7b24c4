"""Command-line flags generated from a dataclass, so each option's type, default and help live once: in its field.

A field ``num_aug: int = 0`` with the docstring ``"Augmented variants per task."`` under it becomes
``--num-aug N`` (help: the docstring and the default); ``Literal[...]`` gives the choices, ``X | None`` an
optional value, ``bool`` a switch, and ``tuple[str, ...]`` a comma-separated list. The docstring is read
from the class source (the attribute-docstring convention), or from ``field_doc``'s metadata.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from collections.abc import Callable
from typing import Any

from hrmkit.config_base import field_default


def field_docs(cls: type) -> dict[str, str]:
    """Each field's one-paragraph help: ``field_doc`` metadata, else the string literal under the field."""
    docs = {field.name: field.metadata["doc"] for field in dataclasses.fields(cls) if "doc" in field.metadata}
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
    for statement, following in zip(body, body[1:]):
        if (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
                and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):
            docs.setdefault(statement.target.id, " ".join(following.value.value.split()))
    return docs


def add_dataclass_flags(parser: argparse.ArgumentParser, cls: type,
                        checks: dict[str, Callable[[str], Any]] | None = None) -> None:
    """One ``--flag`` per field of ``cls``; :func:`dataclass_from_flags` reads them back.

    ``checks`` maps a field name to the argparse ``type`` that parses and checks its value (e.g.
    "an int >= 1"), so a bad value is a usage error naming the flag.
    """
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    checks = checks or {}
    for field in dataclasses.fields(cls):
        if field.init:
            _add_field(parser, field, hints[field.name], docs.get(field.name, ""), checks.get(field.name))


def dataclass_from_flags(cls: type, args: argparse.Namespace):
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        if field.init:
            value = getattr(args, field.name)
            if _is_str_tuple(hints[field.name]) and isinstance(value, str):
                value = tuple(part.strip() for part in value.split(",") if part.strip())
            values[field.name] = value
    return cls(**values)


def _add_field(parser: argparse.ArgumentParser, field: dataclasses.Field, hint: Any, doc: str,
               check: Callable[[str], Any] | None) -> None:
    flag = "--" + field.name.replace("_", "-")
    default = field_default(field)
    hint = _without_none(hint)
    if hint is bool:
        action = argparse.BooleanOptionalAction if default else "store_true"
        parser.add_argument(flag, dest=field.name, action=action, default=default, help=doc)
        return
    kwargs: dict[str, Any] = {"dest": field.name, "default": default}
    if typing.get_origin(hint) is typing.Literal:
        kwargs["choices"] = typing.get_args(hint)
        kwargs["type"] = type(kwargs["choices"][0])
    elif _is_str_tuple(hint):
        kwargs["type"] = str
        kwargs["metavar"] = "A,B,..."
        if isinstance(default, tuple):
            kwargs["default"] = ",".join(default)
    elif hint in (int, float, str):
        kwargs["type"] = hint
    else:
        raise TypeError(f"{field.name}: no command-line form for a {hint!r} field")
    if check is not None:
        kwargs["type"] = check
    shown = kwargs["default"]
    kwargs["help"] = doc if shown is None else f"{doc} (default: {shown})"
    if default is dataclasses.MISSING:
        kwargs.pop("default")
        kwargs["required"] = True
        kwargs["help"] = doc
    parser.add_argument(flag, **kwargs)


def _without_none(hint: Any) -> Any:
    """``X | None`` -> ``X``; ``tuple[str, ...] | str`` (a list given either way) -> ``tuple[str, ...]``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        kept = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        tuples = [arg for arg in kept if _is_str_tuple(arg)]
        if tuples:
            return tuples[0]
        if len(kept) == 1:
            return kept[0]
    return hint


def _is_str_tuple(hint: Any) -> bool:
    hint = hint if typing.get_origin(hint) is tuple else next(
        (arg for arg in typing.get_args(hint) if typing.get_origin(arg) is tuple), None)
    return hint is not None and typing.get_args(hint) == (str, Ellipsis)
