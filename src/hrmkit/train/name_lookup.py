"""What the builders that take a name from the config share: a one-line "unknown name" message
with its "did you mean", and the keyword names a class or function accepts.

It stands alone because optimizers, lr schedulers and token losses all use it and none owns it.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable


def keyword_names(target: Callable) -> set[str]:
    """Keyword names of ``target``; for a class whose ``__init__`` forwards ``**kwargs``,
    also those of its base classes (pytorch-optimizer's PolyScheduler does this)."""
    owners = target.__mro__ if isinstance(target, type) else (target,)
    names: set[str] = set()
    for owner in owners:
        function = owner.__dict__.get("__init__") if isinstance(owner, type) else owner
        if function is None or owner is object:
            continue
        parameters = inspect.signature(function).parameters.values()
        names.update(p.name for p in parameters if p.kind is not p.VAR_KEYWORD)
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return names


def unknown_name_message(kind: str, name: str, known: Iterable[str]) -> str:
    message = f"unknown {kind} '{name}'"
    close = difflib.get_close_matches(name, sorted(set(known)), n=3)
    if close:
        message += " (did you mean " + ", ".join(f"'{match}'" for match in close) + "?)"
    return message
