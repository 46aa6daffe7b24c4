"""A small engine for typed, nested dataclass configs.

Configs are plain dataclasses. This module turns YAML files and command-line overrides
(plain dicts of strings) into instances of them, checking and coercing every value by its
annotation, and reports *all* problems at once in a single one-line :class:`ConfigError`.
The concrete config classes live in ``hrmkit.config``.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import os
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from hrmkit.files import atomic_write_text

TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})
NULL_WORDS = frozenset({"null", "none", "~"})

# Returned by the coercers instead of raising, so that one bad value never hides another.
_INVALID = object()


class ConfigError(ValueError):
    """One or more config problems; ``str()`` is all of them on one line."""

    def __init__(self, problems: list[str] | str):
        raw = [problems] if isinstance(problems, str) else list(problems)
        # The CLI prints this as a single line, so embedded newlines would break it.
        self.problems = [" ".join(problem.split()) for problem in raw]
        super().__init__("; ".join(self.problems))


# ---------------------------------------------------------------------------------------
# Field declaration and help
# ---------------------------------------------------------------------------------------


def field_doc(default: Any, doc: str, flag: str | None = None, **kw: Any) -> Any:
    """A dataclass field with a one-line ``doc`` for ``--help``; ``flag`` also names it ``--<flag>``
    on the command line (an alias beside the dotted name, see :func:`config_flags`).

    Mutable defaults (lists, dicts, dataclass instances) become a ``default_factory`` that
    copies them; a dataclass *class* as default means "a default instance of it";
    ``dataclasses.MISSING`` makes the field required.
    """
    metadata = {**kw.pop("metadata", {}), "doc": doc, **({"flag": flag} if flag else {})}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata, **kw)
    if isinstance(default, type) and dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=default, metadata=metadata, **kw)
    if type(default).__hash__ is None:
        # dataclasses rejects unhashable defaults because they would be shared by instances.
        return dataclasses.field(
            default_factory=lambda: copy.deepcopy(default), metadata=metadata, **kw
        )
    return dataclasses.field(default=default, metadata=metadata, **kw)


def config_flags(cls: type, prefix: str = "") -> dict[str, tuple[str, str]]:
    """``{flag: (dotted name, doc)}`` of every field, nested ones included, declared with ``flag=``."""
    flags = {}
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        nested = _dataclass_in(hints[field.name])
        if nested is not None:
            flags.update(config_flags(nested, prefix + field.name + "."))
        elif "flag" in field.metadata:
            flags[field.metadata["flag"]] = (prefix + field.name, field.metadata["doc"])
    return flags


def describe_config(cls: type) -> list[tuple[str, str, str]]:
    """``(dotted name, default repr, doc)`` for every leaf field, nested ones included."""
    return _describe(cls, None, "")


def _describe(cls: type, defaults: Any, prefix: str) -> list[tuple[str, str, str]]:
    rows = []
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        name = prefix + field.name
        default = getattr(defaults, field.name) if defaults is not None else field_default(field)
        nested = _dataclass_in(hints[field.name])
        if nested is not None and isinstance(default, nested):
            rows.extend(_describe(nested, default, name + "."))
            continue
        shown = "required" if default is dataclasses.MISSING else repr(default)
        rows.append((name, shown, field.metadata.get("doc", "")))
    return rows


def field_default(field: dataclasses.Field) -> Any:
    """A field's default value (a fresh one from its factory), or ``dataclasses.MISSING``."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def _dataclass_in(annotation: Any) -> type | None:
    """The dataclass type in ``annotation`` (also inside ``X | None``), else None."""
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return annotation
    if _is_union(annotation):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return _dataclass_in(members[0])
    return None


# ---------------------------------------------------------------------------------------
# Building a dataclass from a dict
# ---------------------------------------------------------------------------------------


def build_config(cls: type, data: dict) -> Any:
    """Build a (nested) ``cls`` instance from a plain dict, checking and coercing values.

    Every unknown key, bad value and ``validate()`` message is collected and raised
    together as one :class:`ConfigError`.
    """
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError(f"config must be a mapping, got {type(data).__name__}")
    instance = _build_dataclass(cls, data, "", problems)
    if instance is not _INVALID:
        problems.extend(_validation_messages(instance, ""))
    if problems:
        raise ConfigError(problems)
    return instance


def _build_dataclass(cls: type, data: dict, prefix: str, problems: list[str]) -> Any:
    """An instance of ``cls``, or ``_INVALID`` after appending problems.

    A subtree that built cleanly is validated by whoever learns it will not be part of a
    finished config (its failing parent), or at the end by :func:`build_config`, so every
    ``validate()`` runs exactly once and never on a half-built object.
    """
    fields = {field.name: field for field in dataclasses.fields(cls) if field.init}
    hints = typing.get_type_hints(cls)
    problems_before = len(problems)

    for key in data:
        if key not in fields:
            problems.append(_unknown_key_message(str(key), prefix, list(fields)))

    values: dict[str, Any] = {}
    for name, field in fields.items():
        path = prefix + name
        if name not in data:
            if field_default(field) is dataclasses.MISSING:
                problems.append(f"missing required key '{path}'")
            continue
        values[name] = _coerce(data[name], hints[name], path, problems)

    if len(problems) > problems_before:
        for name, value in values.items():
            if dataclasses.is_dataclass(value):
                problems.extend(_validation_messages(value, prefix + name))
        return _INVALID
    return cls(**values)


def _unknown_key_message(key: str, prefix: str, known: list[str]) -> str:
    message = f"unknown key '{prefix}{key}'"
    # A cutoff above difflib's 0.6 keeps typos matched but unrelated names unsuggested.
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.7)
    if close:
        message += f" (did you mean '{prefix}{close[0]}'?)"
    return message


def _validation_messages(instance: Any, path: str) -> list[str]:
    """Messages from ``validate()`` of ``instance`` and of every nested dataclass in it."""
    messages = []
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            messages.extend(_validation_messages(value, _join(path, field.name)))
    validate = getattr(instance, "validate", None)
    if callable(validate):
        messages.extend(f"{path}: {message}" if path else message for message in validate() or [])
    return messages


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


# ---------------------------------------------------------------------------------------
# Coercion by annotation. Each coercer returns the value or _INVALID (after recording why).
# ---------------------------------------------------------------------------------------


def _coerce(value: Any, annotation: Any, path: str, problems: list[str]) -> Any:
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return _guess_scalar(value) if isinstance(value, str) else value
    if _is_union(annotation):
        return _coerce_union(value, annotation, path, problems)
    if origin is Literal:
        return _coerce_literal(value, typing.get_args(annotation), path, problems)
    if origin in (list, tuple) or annotation in (list, tuple):
        return _coerce_sequence(value, annotation, path, problems)
    if origin is dict or annotation is dict:
        return _coerce_mapping(value, annotation, path, problems)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a mapping of {annotation.__name__} fields, got {value!r}")
            return _INVALID
        return _build_dataclass(annotation, value, path + ".", problems)
    scalar_coercer = _SCALAR_COERCERS.get(annotation)
    if scalar_coercer is None:
        raise TypeError(f"{path}: unsupported config annotation {annotation!r}")
    result = scalar_coercer(value)
    if result is _INVALID:
        problems.append(f"{path}: expected {'a finite ' if _non_finite(value) else ''}{_type_name(annotation)}, "
                        f"got {value!r}")
    return result


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (Union, types.UnionType)


def _coerce_union(value: Any, annotation: Any, path: str, problems: list[str]) -> Any:
    members = typing.get_args(annotation)
    optional = type(None) in members
    if value is None or (optional and isinstance(value, str) and value.strip().lower() in NULL_WORDS):
        if optional:
            return None
        problems.append(f"{path}: expected {_type_name(annotation)}, got None")
        return _INVALID
    candidates = [member for member in members if member is not type(None)]
    if len(candidates) == 1:
        # A single real type reports its own, more specific, problems (e.g. a nested key).
        return _coerce(value, candidates[0], path, problems)
    for member in candidates:
        result = _coerce(value, member, path, [])
        if result is not _INVALID:
            return result
    problems.append(f"{path}: expected {_type_name(annotation)}, got {value!r}")
    return _INVALID


def _coerce_literal(value: Any, options: tuple, path: str, problems: list[str]) -> Any:
    for option in options:
        converted = _SCALAR_COERCERS.get(type(option), lambda v: v)(value)
        if converted is not _INVALID and type(converted) is type(option) and converted == option:
            return option
    choices = ", ".join(repr(option) for option in options)
    problems.append(f"{path}: expected one of {choices}, got {value!r}")
    return _INVALID


def _coerce_sequence(value: Any, annotation: Any, path: str, problems: list[str]) -> Any:
    is_tuple = annotation is tuple or typing.get_origin(annotation) is tuple
    if isinstance(value, str):
        value = _split_list_text(value)
    if not isinstance(value, (list, tuple)):
        problems.append(f"{path}: expected {_type_name(annotation)}, got {value!r}")
        return _INVALID
    item_types = _sequence_item_types(annotation, len(value))
    if item_types is None:
        problems.append(f"{path}: expected {_type_name(annotation)}, got {len(value)} items: {value!r}")
        return _INVALID
    items = [
        _coerce(item, item_type, f"{path}[{index}]", problems)
        for index, (item, item_type) in enumerate(zip(value, item_types))
    ]
    if any(item is _INVALID for item in items):
        return _INVALID
    return tuple(items) if is_tuple else items


def _sequence_item_types(annotation: Any, length: int) -> list | None:
    """One annotation per item; None when a fixed-length tuple gets the wrong length."""
    args = typing.get_args(annotation)
    if not args:
        return [Any] * length
    if typing.get_origin(annotation) is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        return list(args) if len(args) == length else None
    return [args[0]] * length


def _split_list_text(text: str) -> Any:
    """``"[1, 2]"`` (YAML flow syntax) or ``"1,2"`` into a list of items."""
    text = text.strip()
    if text.startswith("["):
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            return text
    if not text:
        return []
    return [item.strip() for item in text.split(",")]


def _coerce_mapping(value: Any, annotation: Any, path: str, problems: list[str]) -> Any:
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            pass
    if not isinstance(value, dict):
        problems.append(f"{path}: expected a mapping, got {value!r}")
        return _INVALID
    args = typing.get_args(annotation)
    value_type = args[1] if len(args) == 2 else Any
    result = {}
    for key, item in value.items():
        if not isinstance(key, str):
            problems.append(f"{path}: keys must be strings, got {key!r}")
            continue
        result[key] = _coerce(item, value_type, f"{path}.{key}", problems)
    if len(result) != len(value) or any(item is _INVALID for item in result.values()):
        return _INVALID
    return result


def _to_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return _INVALID


def _to_int(value: Any) -> Any:
    # bool is a subclass of int; accepting it would let `true` silently mean 1.
    if isinstance(value, bool):
        return _INVALID
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            value = _to_float(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return _INVALID


def _to_float(value: Any) -> Any:
    """A finite float: nan and inf meant nothing any field can use (lr=inf trained to NaN, grad_clip=nan
    turned clipping off) and were taken without a word."""
    if isinstance(value, bool):
        return _INVALID
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        # PyYAML reads "1e-3" (no dot) as a string, so this path serves YAML files too.
        try:
            number = float(value.strip())
        except ValueError:
            return _INVALID
    else:
        return _INVALID
    return number if math.isfinite(number) else _INVALID


def _non_finite(value: Any) -> bool:
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):
        return False


def _to_str(value: Any) -> Any:
    if isinstance(value, str):
        return value
    # YAML turns names like `2024` into numbers; for a str field the text is what was meant.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return _INVALID


_SCALAR_COERCERS: dict[type, Callable[[Any], Any]] = {
    bool: _to_bool,
    int: _to_int,
    float: _to_float,
    str: _to_str,
}


def _guess_scalar(text: str) -> Any:
    """Read untyped text (an ``Any`` field from the command line) the way YAML would."""
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered in NULL_WORDS:
        return None
    if lowered in ("true", "false", "yes", "no"):
        return lowered in ("true", "yes")
    for convert in (int, float):
        try:
            return convert(stripped)
        except ValueError:
            pass
    if stripped.startswith(("[", "{")):
        try:
            return yaml.safe_load(stripped)
        except yaml.YAMLError:
            return text
    return text


def _type_name(annotation: Any) -> str:
    if _is_union(annotation):
        names = [
            "null" if member is type(None) else _type_name(member)
            for member in typing.get_args(annotation)
        ]
        return " or ".join(names)
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is not None and args:
        inner = ", ".join("..." if arg is Ellipsis else _type_name(arg) for arg in args)
        return f"{origin.__name__}[{inner}]"
    return getattr(annotation, "__name__", repr(annotation))


# ---------------------------------------------------------------------------------------
# Command-line overrides and merging
# ---------------------------------------------------------------------------------------


def parse_overrides(args: list[str]) -> dict:
    """``key.sub=value``, ``--key.sub value`` and ``--key.sub=value`` into a nested dict.

    Values stay strings (:func:`build_config` coerces them). A ``--flag`` with no value
    (followed by another ``--option`` or nothing) means ``"true"``. Dashes in key names
    become underscores, so ``--max-steps`` and ``max_steps`` are the same key.
    """
    pairs, problems = _override_pairs(args)
    result: dict = {}
    for key, value in pairs:
        problem = _set_dotted(result, key, value)
        if problem:
            problems.append(problem)
    if problems:
        raise ConfigError(problems)
    return result


def _override_pairs(args: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    pairs, problems = [], []
    index = 0
    while index < len(args):
        item = args[index]
        if item.startswith("--"):
            body = item[2:]
            if "=" in body:
                key, value = body.split("=", 1)
            elif index + 1 < len(args) and not args[index + 1].startswith("--"):
                key, value = body, args[index + 1]
                index += 1
            else:
                key, value = body, "true"
        elif "=" in item:
            key, value = item.split("=", 1)
        else:
            problems.append(f"bad override '{item}': expected key=value or --key value")
            index += 1
            continue
        key = key.strip().replace("-", "_")
        if not key or any(not part.isidentifier() for part in key.split(".")):
            problems.append(f"bad override '{item}': '{key}' is not a dotted key")
        else:
            pairs.append((key, value))
        index += 1
    return pairs, problems


def _set_dotted(target: dict, key: str, value: str) -> str | None:
    """Set ``target[a][b][c] = value`` for ``a.b.c``; a problem message on conflict."""
    *parents, leaf = key.split(".")
    node = target
    for depth, part in enumerate(parents):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            return f"conflicting overrides: '{'.'.join(parents[: depth + 1])}' is given a value and sub-keys"
    if isinstance(node.get(leaf), dict):
        return f"conflicting overrides: '{key}' is given a value and sub-keys"
    node[leaf] = value
    return None


def deep_merge(base: dict, override: dict) -> dict:
    """A new dict: nested dicts merged key by key, any other value replaced by ``override``'s."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# ---------------------------------------------------------------------------------------
# YAML files
# ---------------------------------------------------------------------------------------


def load_yaml(path: str | os.PathLike) -> dict:
    """Read a YAML mapping; a top-level ``base: other.yaml`` is loaded first and overridden.

    ``base`` is relative to the file's folder (``.yaml`` may be left off) and may chain.
    """
    return _load_yaml_chain(Path(path), [])


def _load_yaml_chain(path: Path, chain: list[Path]) -> dict:
    resolved = path.resolve()
    if resolved in chain:
        names = " -> ".join(str(p) for p in [*chain, resolved])
        raise ConfigError(f"{chain[0]}: 'base' files form a cycle: {names}")
    data = _read_yaml_mapping(path)
    base_name = data.pop("base", None)
    if base_name is None:
        return data
    if not isinstance(base_name, str) or not base_name.strip():
        raise ConfigError(f"{path}: 'base' must be a file name, got {base_name!r}")
    base_data = _load_yaml_chain(_resolve_base(path, base_name), [*chain, resolved])
    return deep_merge(base_data, data)


def _resolve_base(path: Path, base_name: str) -> Path:
    candidate = path.parent / base_name
    if not candidate.exists() and not candidate.suffix:
        candidate = candidate.with_suffix(".yaml")
    return candidate


def _read_yaml_mapping(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {_yaml_problem(error)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem


def config_to_dict(obj: Any) -> Any:
    """A dataclass (nested) as plain dicts and lists, keys in field order."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {field.name: config_to_dict(getattr(obj, field.name)) for field in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        # Lists, not tuples: yaml.safe_dump cannot represent a tuple.
        return [config_to_dict(item) for item in obj]
    if isinstance(obj, dict):
        return {key: config_to_dict(value) for key, value in obj.items()}
    return obj


def config_to_yaml(obj: Any) -> str:
    """The YAML text :func:`save_config_yaml` writes."""
    return yaml.safe_dump(config_to_dict(obj), sort_keys=False, default_flow_style=False)


def save_config_yaml(obj: Any, path: str | os.PathLike) -> None:
    """Write a config as YAML, atomically, keys in field order."""
    atomic_write_text(path, config_to_yaml(obj))
