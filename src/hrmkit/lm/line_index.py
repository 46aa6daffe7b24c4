"""Byte offsets of the lines of a JSONL file, cached beside it, so one line can be read without the rest.

The cache is `<file>.idx.npy` and records the file's size and modification time; any change
rebuilds it, and a folder that cannot be written to just means no cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hrmkit.files import write_atomically

# The cached index is one int64 .npy: [tag, jsonl size, jsonl mtime_ns, line starts..., size].
_INDEX_TAG = 0x68726D_1D_0001  # "hrm", "idx", format 1: tells our file from any other .npy
_INDEX_HEADER = 3
_INDEX_SCAN_BYTES = 16 << 20  # big reads: scanning a multi-GB file is bound by the disk


def _index_path(jsonl_path: Path) -> Path:
    return jsonl_path.with_name(jsonl_path.name + ".idx.npy")


def _scan_line_bounds(path: Path) -> np.ndarray:
    """int64 [lines + 1]: line i is bytes [bounds[i], bounds[i + 1]) of the file."""
    newline_ends = []
    buffer = bytearray(_INDEX_SCAN_BYTES)
    base = 0
    with open(path, "rb", buffering=0) as file:
        while True:
            size = file.readinto(buffer)
            if not size:
                break
            chunk = np.frombuffer(buffer, dtype=np.uint8, count=size)
            newline_ends.append(np.flatnonzero(chunk == ord("\n")).astype(np.int64) + (base + 1))
            base += size
    starts = np.concatenate([np.zeros(1, dtype=np.int64), *newline_ends])
    if starts[-1] == base:  # the final newline starts no line
        starts = starts[:-1]
    return np.append(starts, np.int64(base))


def _stamp(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_size, status.st_mtime_ns


def _save_index(path: Path, bounds: np.ndarray, stamp: tuple[int, int]) -> None:
    """Cache the index beside the jsonl; a read-only folder just means no cache."""
    header = np.array([_INDEX_TAG, *stamp], dtype=np.int64)
    try:
        write_atomically(_index_path(path), lambda file: np.save(file, np.concatenate([header, bounds])))
    except OSError:
        pass


def _load_cached_index(path: Path, stamp: tuple[int, int]) -> np.ndarray | None:
    index_path = _index_path(path)
    if not index_path.is_file():
        return None
    try:
        cached = np.load(index_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    valid = (
        cached.dtype == np.int64
        and cached.ndim == 1
        and len(cached) > _INDEX_HEADER
        and tuple(int(value) for value in cached[:_INDEX_HEADER]) == (_INDEX_TAG, *stamp)
        and int(cached[-1]) == stamp[0]
    )
    return cached[_INDEX_HEADER:] if valid else None


def line_offsets(path: str | os.PathLike) -> np.ndarray:
    """Byte offsets of every line of `path` (plus the file size at the end), from the cache if fresh.

    The cache records the file's size and modification time; any change rebuilds it.
    """
    path = Path(path)
    stamp = _stamp(path)
    cached = _load_cached_index(path, stamp)
    if cached is not None:
        return cached
    bounds = _scan_line_bounds(path)
    if _stamp(path) == stamp:  # a file that changed during the scan gets no cache
        _save_index(path, bounds, stamp)
    return bounds


def save_line_index(path: Path, bounds: np.ndarray) -> None:
    """Cache the line offsets of a file just written (its writer knows them without a scan)."""
    _save_index(path, bounds, _stamp(path))
