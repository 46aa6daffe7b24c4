"""Dotted field paths into nested records: `data.question`, `data.answers.text[0]`, `turns[-1]`.

A miss is *structural* when a key is absent or a value has the wrong shape (no such field in
this schema), and *empty* when the field exists but holds nothing usable (null, an empty
list, an index past the end). The tools check the first record for structural misses, which
are typos in the command and end the run with exit code 2; any later miss is one bad record,
counted and reported.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_SEGMENT = re.compile(r"^([^.\[\]]+)((?:\[-?\d+\])*)$")
_INDEX = re.compile(r"\[(-?\d+)\]")


class FieldMissing(LookupError):
    """A record lacks a field; `structural` tells a schema mismatch from an empty value."""

    def __init__(self, reason: str, structural: bool, available: Sequence[str] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.structural = structural
        self.available = list(available)


@dataclass(frozen=True)
class FieldPath:
    """A parsed path: string steps are dict keys, int steps are list indices."""

    text: str
    steps: tuple[str | int, ...]

    @classmethod
    def parse(cls, text: str) -> FieldPath:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("a field path must be a non-empty string such as 'text' or 'data.answers.text[0]'")
        steps: list[str | int] = []
        for segment in text.split("."):
            match = _SEGMENT.match(segment)
            if match is None:
                raise ValueError(
                    f"bad field path {text!r}: each dot-separated part must be a name optionally followed by "
                    "[index] (e.g. data.answers.text[0])"
                )
            steps.append(match.group(1))
            steps.extend(int(index) for index in _INDEX.findall(match.group(2)))
        return cls(text, tuple(steps))

    @classmethod
    def literal(cls, key: str) -> FieldPath:
        """One top-level key taken as it is, dots and brackets included."""
        return cls(key, (key,))

    @property
    def top_level(self) -> str:
        """The record's top-level key (the column to read from parquet or arrow)."""
        return str(self.steps[0])

    def lookup(self, record: Any) -> Any:
        """The value at this path, or FieldMissing saying why there is none."""
        value = record
        walked = ""
        for step in self.steps:
            if value is None:
                raise FieldMissing(f"'{walked}' is null", structural=False)
            if isinstance(step, int):
                if not isinstance(value, (list, tuple)):
                    raise FieldMissing(f"'{walked}' is {_kind(value)}, not a list", structural=True)
                if not -len(value) <= step < len(value):
                    raise FieldMissing(f"'{walked}' has {len(value)} item(s), no [{step}]", structural=False)
                value = value[step]
                walked += f"[{step}]"
            else:
                where = f"'{walked}'" if walked else "the record"
                if not isinstance(value, dict):
                    raise FieldMissing(f"{where} is {_kind(value)}, not an object", structural=True)
                if step not in value:
                    raise FieldMissing(f"{where} has no key '{step}'", structural=True, available=sorted(map(str, value)))
                value = value[step]
                walked = f"{walked}.{step}" if walked else step
        if value is None:
            raise FieldMissing(f"'{self.text}' is null", structural=False)
        return value

    def text_of(self, record: Any) -> str:
        """The value as text: strings as they are, numbers and booleans written out."""
        return self.as_text(self.lookup(record))

    def as_text(self, value: Any) -> str:
        """A value found at this path as text; a list or an object is a (structural) miss."""
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float, bool)):
            return str(value)
        hint = f" (pick one item, e.g. '{self.text}[0]')" if isinstance(value, (list, tuple)) else ""
        raise FieldMissing(f"'{self.text}' is {_kind(value)}, not text{hint}", structural=True)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    if value is None:
        return "null"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"



def check_schema(paths: Sequence[FieldPath], first_record: Any, where: str, need_text: bool = True) -> None:
    """Raise ValueError (one line) when the first record shows a path names no field at all.

    With `need_text`, a field holding a list or an object is refused too: it exists, so the
    message says what it holds rather than calling it unknown.
    """
    for path in paths:
        try:
            value = path.lookup(first_record)
        except FieldMissing as missing:
            if missing.structural:
                raise ValueError(_unknown_field(path, missing, where)) from None
            continue  # empty in this record only
        if need_text:
            try:
                path.as_text(value)
            except FieldMissing as missing:
                raise ValueError(f"{where}: field {missing.reason}") from None


def _unknown_field(path: FieldPath, missing: FieldMissing, where: str) -> str:
    """The message for a path the record's keys do not have, with the keys there are and a guess."""
    message = f"{where}: unknown field '{path.text}': {missing.reason}"
    if missing.available:
        guess = difflib.get_close_matches(str(path.steps[len(path.steps) - 1]), missing.available, n=1)
        if not guess:
            guess = difflib.get_close_matches(path.top_level, missing.available, n=1)
        message += f" (it has: {', '.join(missing.available[:12])}{', ...' if len(missing.available) > 12 else ''})"
        if guess:
            message += f"; did you mean '{guess[0]}'?"
    return message
