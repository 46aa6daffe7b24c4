"""Checkpoints: atomic save, rotation, resume discovery and reference-key interop.

Our checkpoints are ``<dir>/step_<N>.pt`` (a dict with ``"step"`` and, last, a
``"complete": True`` marker) beside ``step_<N>.yaml`` (the resolved config). Reference
HRM/TRM checkpoints are raw state dicts named ``step_<N>`` (no extension) with keys under
``model.inner.`` (``_orig_mod.`` first when trained under ``torch.compile``) and the run's
``all_config.yaml`` in the same folder.

Every checkpoint load in hrmkit goes through :func:`load_checkpoint_file`, which uses
``torch.load(weights_only=True)``: a file yields only tensors, plain Python data (dicts,
lists, tuples, strings, numbers) and, for the RNG state of training checkpoints, numpy's
``uint32`` state array; no code stored in the file runs. A file that holds anything else is
refused with a one-line :class:`CheckpointError`.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from hrmkit.files import atomic_write_text, clear_leftovers, write_atomically

__all__ = [
    "CheckpointError",
    "atomic_torch_save",
    "atomic_write_text",
    "save_checkpoint",
    "find_resumable",
    "load_checkpoint_file",
    "normalize_reference_keys",
    "to_reference_keys",
    "is_reference_checkpoint",
    "is_reference_state_dict",
    "load_reference_config",
]

CHECKPOINT_NAME = re.compile(r"^step_(\d+)\.pt$")
REFERENCE_PREFIX = "model.inner."
COMPILED_PREFIX = "_orig_mod."
REFERENCE_CONFIG_NAME = "all_config.yaml"


class CheckpointError(ValueError):
    """A checkpoint or its config cannot be used; the message is one line."""


def _numpy_rng_state_globals() -> list:
    """What ``np.random.get_state()`` (``("MT19937", uint32 array, pos, has_gauss, gauss)``)
    needs beyond weights_only's defaults, and nothing more: the array rebuild function,
    ``ndarray`` (built from its raw bytes), ``dtype`` and the ``uint32`` dtype's class (the
    only dtype whose state may be set, so no other numpy array loads)."""
    reconstruct = np.zeros(1).__reduce__()[0]  # numpy 2: numpy._core..., numpy 1: numpy.core...
    own_name = f"{reconstruct.__module__}.{reconstruct.__qualname__}"
    # A file pickled under the other numpy major version names the same function differently.
    other_names = {f"numpy.{core}.multiarray._reconstruct" for core in ("core", "_core")} - {own_name}
    return [reconstruct, *((reconstruct, name) for name in sorted(other_names)),
            np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename over it."""
    write_atomically(path, lambda file: torch.save(obj, file))


def save_checkpoint(
    ckpt_dir: str | os.PathLike,
    step: int,
    state: dict,
    config_yaml_text: str,
    limit: int | None,
) -> Path:
    """Write ``step_<step>.pt`` and ``step_<step>.yaml``, then keep only the newest ``limit``.

    The YAML goes first so that a checkpoint file never exists without its config.
    ``limit`` None or <= 0 keeps every checkpoint; the one just written is never removed.
    """
    folder = Path(ckpt_dir)
    folder.mkdir(parents=True, exist_ok=True)
    clear_leftovers(folder)  # a save killed mid-write left step_<N>.pt.tmp-<pid>, a name no later save reuses
    path = folder / f"step_{step}.pt"
    payload = {key: value for key, value in state.items() if key != "complete"}
    payload["step"] = step
    payload["complete"] = True
    atomic_write_text(path.with_suffix(".yaml"), config_yaml_text)
    atomic_torch_save(payload, path)
    if limit is not None and limit > 0:
        _remove_old_checkpoints(folder, keep=limit, protected=step)
    return path


def _checkpoints_newest_first(folder: Path) -> list[tuple[int, Path]]:
    found = []
    for path in folder.iterdir():
        match = CHECKPOINT_NAME.match(path.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def _remove_old_checkpoints(folder: Path, keep: int, protected: int) -> None:
    for index, (step, path) in enumerate(_checkpoints_newest_first(folder)):
        if index >= keep and step != protected:
            path.unlink(missing_ok=True)
            path.with_suffix(".yaml").unlink(missing_ok=True)


def load_checkpoint_file(path: str | os.PathLike, require_complete: bool = False) -> dict:
    """Load a checkpoint dict onto the CPU; :class:`CheckpointError` if it is unusable.

    Any dict of tensors and plain data loads (training checkpoints with their RNG state, exports,
    reference state dicts), with ``weights_only=True``: nothing in the file runs, and a file that
    holds other objects is refused. ``require_complete`` also demands the ``"complete": True``
    marker of a training checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(_numpy_rng_state_globals()):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        refused, detail = _weights_only_refusal(error)
        if refused:
            raise CheckpointError(
                f"checkpoint {path} holds something other than tensors and plain data ({detail}); "
                "not loaded, since unpickling it could run code from the file") from None
        raise CheckpointError(f"cannot read checkpoint {path}: {detail}") from None
    except Exception as error:  # torch.load raises many types for damaged files
        raise CheckpointError(f"cannot read checkpoint {path}: {_first_line(error)}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a dict")
    if require_complete and state.get("complete") is not True:
        raise CheckpointError(f"checkpoint {path} is incomplete (no 'complete' marker)")
    return state


def _weights_only_refusal(error: pickle.UnpicklingError) -> tuple[bool, str]:
    """Whether torch's weights-only unpickler refused an object (rather than a damaged
    stream), and a short detail: the refused class or function where its message names one."""
    text = str(error)
    reason = text.split("WeightsUnpickler error:", 1)[-1].strip()
    reason = reason.splitlines()[0].strip() if reason else ""
    named = (re.search(r"GLOBAL (\S+) (?:was not an allowed|whose module)", reason)
             or re.search(r"but got <class '([^']+)'>", reason))
    if named:
        return True, f"refused {named.group(1)}"
    if re.search(r"Unsupported global|is blocked|Can only ", reason):
        return True, reason[:200]
    return False, f"{type(error).__name__}: {reason[:200]}" if reason else type(error).__name__


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def find_resumable(ckpt_dir: str | os.PathLike) -> tuple[Path | None, list[str]]:
    """The newest loadable ``step_<N>.pt`` (by N) and a warning per damaged newer one."""
    folder = Path(ckpt_dir)
    warnings: list[str] = []
    if not folder.is_dir():
        return None, warnings
    for _, path in _checkpoints_newest_first(folder):
        try:
            load_checkpoint_file(path, require_complete=True)
        except CheckpointError as error:
            warnings.append(f"skipping unusable checkpoint: {error}")
            continue
        return path, warnings
    return None, warnings


# ---------------------------------------------------------------------------------------
# Reference (HRM / TRM repository) interop
# ---------------------------------------------------------------------------------------


def normalize_reference_keys(state_dict: dict) -> dict:
    """Keys relative to the inner model: ``[_orig_mod.]model.inner.X`` becomes ``X``.

    Keys without those prefixes are kept as they are.
    """
    return {_strip_reference_prefix(key): value for key, value in state_dict.items()}


def _strip_reference_prefix(key: str) -> str:
    # torch.compile inserts an `_orig_mod` module level; no real module has that name.
    key = ".".join(part for part in key.split(".") if part != COMPILED_PREFIX[:-1])
    return key[len(REFERENCE_PREFIX):] if key.startswith(REFERENCE_PREFIX) else key


def to_reference_keys(state_dict: dict, compiled: bool = False) -> dict:
    """The inverse of :func:`normalize_reference_keys`: ``X`` becomes ``model.inner.X``,
    with ``_orig_mod.`` first when ``compiled``."""
    prefix = (COMPILED_PREFIX if compiled else "") + REFERENCE_PREFIX
    return {prefix + key: value for key, value in state_dict.items()}


def is_reference_state_dict(state: object) -> bool:
    """Whether a loaded checkpoint is a raw reference state dict (tensor values, reference keys)."""
    return isinstance(state, dict) and bool(state) and all(
        isinstance(key, str)
        and isinstance(value, torch.Tensor)
        and (REFERENCE_PREFIX in key or key.startswith(COMPILED_PREFIX))
        for key, value in state.items()
    )


def is_reference_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a raw reference state dict."""
    try:
        return is_reference_state_dict(load_checkpoint_file(path))
    except CheckpointError:
        return False


def load_reference_config(checkpoint_path: str | os.PathLike) -> dict:
    """The reference run's ``all_config.yaml`` from the checkpoint's folder, as a dict."""
    config_path = Path(checkpoint_path).parent / REFERENCE_CONFIG_NAME
    if not config_path.is_file():
        raise CheckpointError(f"reference config not found: expected {config_path} beside the checkpoint")
    try:
        data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise CheckpointError(f"cannot read reference config {config_path}: {_first_line(error)}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"reference config {config_path} is not a mapping")
    return data
