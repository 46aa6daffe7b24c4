"""What every dataset check shares: the `Check` record and chunked reads of a split's arrays."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from hrmkit.puzzles.format import PuzzleSplit

CHUNK_ROWS = 65_536
MAX_LISTED = 3  # faults named in one check's line; the rest are counted
STANDARD_SPLITS = ("train", "test")


@dataclass
class Check:
    """One named check: whether it passed and a one-line explanation."""

    name: str
    ok: bool
    detail: str


# --------------------------------------------------------------------------- reading in chunks


def row_chunks(split: PuzzleSplit, array_name: str) -> Iterator[tuple[int, np.ndarray]]:
    """(index of the first row across all sets, rows) for one array of every set, in metadata order."""
    offset = 0
    for set_name in split.metadata.sets:
        array = split.sets[set_name][array_name]
        for start in range(0, len(array), CHUNK_ROWS):
            yield offset + start, np.asarray(array[start : start + CHUNK_ROWS])
        offset += len(array)


def paired_chunks(split: PuzzleSplit) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    for (start, inputs), (_, labels) in zip(row_chunks(split, "inputs"), row_chunks(split, "labels")):
        yield start, inputs, labels
