"""Writing outputs so that a reader never sees half of one, and reading the small JSON files beside them.

Every output in hrmkit appears under its final name only once it is complete:

- a file: :func:`write_atomically` (or :func:`atomic_write_text`) writes beside it and renames;
  :func:`staged_file` hands out the temporary path for writers that open it themselves;
- a folder (a dataset, a corpus): :func:`staged_folder` builds it under a temporary name and
  :func:`move_into_place` swaps it in.

An interrupted run therefore leaves at most a ``<name>.tmp-<pid>`` file or folder behind,
which no later run mistakes for finished output. This module imports nothing of hrmkit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


class DatasetError(ValueError):
    """A data file is missing or malformed; the message is one line: `<file>: <problem>`."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.path}: {self.problem}")


def temporary_name(path: str | os.PathLike) -> Path:
    """The name ``path`` is written under until it is complete."""
    path = Path(path)
    return path.with_name(f"{path.name}.tmp-{os.getpid()}")


# What a writer leaves beside its output while it works: <name>.tmp-<pid>[suffix] (the unfinished output)
# and, while swapping a finished one in, <name>.old-<pid> (the output it replaces; move_into_place).
_LEFTOVER = re.compile(r"^(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)(?:-[a-z]+)?$")


def _process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False


def clear_leftovers(folder: str | os.PathLike, name: str | None = None) -> None:
    """Remove what writers killed mid-write (SIGKILL, a power loss) left in ``folder``: unfinished
    outputs of processes that are gone, for ``name`` or (None) any name. An output such a process was
    replacing goes back under its name when nothing took its place, else it goes too. Without this a
    killed build's temporary copy (gigabytes for ARC) stayed for good. Live processes' are left alone."""
    folder = Path(folder)
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        match = _LEFTOVER.match(entry.name)
        if not match or (name is not None and match["name"] != name) or not _process_is_gone(int(match["pid"])):
            continue
        target = entry.with_name(match["name"])
        if match["kind"] == "old" and not target.exists():
            os.rename(entry, target)
        elif entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def refuse_folder(path: str | os.PathLike | None) -> None:
    """An output file's path must not name a folder: the final rename would fail, after all the work.
    Verbs call this before they start; ``write_atomically`` checks again."""
    if path is not None and Path(path).is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the name of the file to write")


def refuse_file(path: str | os.PathLike) -> Path:
    """An output folder's path must not name a file; verbs call this before they start."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} is a file; give the name of a folder to write into")
    return path


def output_folder(path: str | os.PathLike) -> Path:
    """The folder ``path`` (made, with its parents, if missing); a file of that name is refused."""
    path = refuse_file(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_atomically(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(binary_file)`` on a temporary file beside ``path``, then rename it.

    Readers see either the old file or the complete new one, never a partial write: the
    temporary file is flushed to disk before :func:`os.replace`, which is atomic on one
    file system. On failure the temporary file is removed and the error re-raised.
    """
    refuse_folder(path)
    path = Path(path)
    clear_leftovers(path.parent, path.name)
    temporary = temporary_name(path)
    try:
        with open(temporary, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable across a power loss; not possible on every platform.
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text to ``path`` atomically (see :func:`write_atomically`)."""
    write_atomically(path, lambda file: file.write(text.encode("utf-8")))


@contextmanager
def staged_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, on failure removed."""
    path = Path(path)
    clear_leftovers(path.parent, path.name)
    temporary = temporary_name(path)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def staged_folder(out_dir: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield an empty folder beside ``out_dir``; on success it replaces ``out_dir``, on failure it is removed.

    ``suffix`` marks a folder that still has to pass a check before it counts (see ``hrm data merge``).
    """
    out_dir = Path(out_dir)
    clear_leftovers(out_dir.parent, out_dir.name)
    staging = out_dir.with_name(f"{temporary_name(out_dir).name}{suffix}")
    if staging.exists():  # left behind by a crashed run that had our pid
        shutil.rmtree(staging)
    try:
        staging.mkdir(parents=True)
        yield staging
        move_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def move_into_place(staging: Path, root: Path) -> None:
    """Rename a finished staging folder to ``root``, replacing an old one only once the new one is in place."""
    if not root.exists():
        os.rename(staging, root)
        return
    retired = root.with_name(f"{root.name}.old-{os.getpid()}")
    os.rename(root, retired)
    try:
        os.rename(staging, root)
    except OSError:
        os.rename(retired, root)
        raise
    shutil.rmtree(retired)


def check_output_free(out_dir: str | os.PathLike, overwrite: bool) -> Path:
    """Every writer's guard (builders, corpus tools, weight conversion): refuse to replace an existing
    output unless asked to (``overwrite``).

    The message is the one the CLI prints, so it names the flag, not the parameter."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise DatasetError(out_dir, "already exists; remove it or pass --force")
    return out_dir


def read_json(path: Path) -> Any:
    """A JSON file's content; a missing or malformed file is a one-line DatasetError."""
    if not path.is_file():
        raise DatasetError(path, "file not found")
    try:
        with open(path) as file:
            return json.load(file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(path, f"not valid JSON ({error})") from None


# -- what a data folder holds, for messages that name it when it is the wrong kind -----------------
def puzzle_split_names(root: str | os.PathLike) -> list[str]:
    """The splits of a puzzle dataset (``<split>/dataset.json``, from ``hrm prepare sudoku`` and the like)."""
    root = Path(root)
    return sorted(path.name for path in root.iterdir() if (path / "dataset.json").is_file()) if root.is_dir() else []


def corpus_files(root: str | os.PathLike) -> list[str]:
    """meta.json and the ``<split>.jsonl`` files of an HRM-LM corpus; [] when ``root`` is not one."""
    root = Path(root)
    if not (root / "meta.json").is_file():
        return []
    return ["meta.json", *sorted(path.name for path in root.glob("*.jsonl"))]


def missing_eval_split(root: str | os.PathLike, split: str, available: list[str]) -> DatasetError:
    """The error for a ``data.eval_split`` the dataset lacks: a run that never evaluates should be asked for."""
    return DatasetError(root, f"has no '{split}' split to evaluate on (it has: {', '.join(available) or 'none'}); "
                              "set data.eval_split to one of them, or data.eval_split='' to train without evaluating")
